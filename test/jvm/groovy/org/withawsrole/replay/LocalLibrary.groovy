package org.withawsrole.replay

import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.customizers.ImportCustomizer

/**
 * The shared libraries of one build (src/, vars/, resources/ of each directory), compiled afresh
 * into one new GroovyClassLoader, as Jenkins does for every build and every Replay: all libraries
 * of a build share that loader, so one library's classes and steps can use another's. Classes of
 * src/ are compiled from source by that loader when vars/ or a Jenkinsfile first names them;
 * nothing of src/ is on the test classpath.
 */
class LocalLibrary {
    static final String NAME = 'withAwsRole'

    /** Library name -> directory, withAwsRole first. */
    final Map<String, File> directories
    final GroovyClassLoader classLoader
    private final Map<String, Class> globalVariables = [:]

    private LocalLibrary(Map<String, File> directories, GroovyClassLoader classLoader) {
        this.directories = Collections.unmodifiableMap(new LinkedHashMap<String, File>(directories))
        this.classLoader = classLoader
    }

    /** This project's library alone. */
    static LocalLibrary compile(File directory) {
        return compile([(NAME): directory])
    }

    static LocalLibrary compile(Map<String, File> directories) {
        CompilerConfiguration configuration = new CompilerConfiguration()
        configuration.scriptBaseClass = PipelineScript.name
        configuration.sourceEncoding = 'UTF-8'
        // Jenkins adds these imports to pipeline and library code.
        configuration.addCompilationCustomizers(new ImportCustomizer()
                .addImport('Library', Library.name)
                .addImports('com.cloudbees.groovy.cps.NonCPS'),
                new StepCallsInClosures())
        GroovyClassLoader loader = new GroovyClassLoader(LocalLibrary.classLoader, configuration)
        LocalLibrary library = new LocalLibrary(directories, loader)
        directories.each { String name, File directory ->
            loader.addClasspath(new File(directory, 'src').absolutePath)
        }
        directories.each { String libraryName, File directory ->
            new File(directory, 'vars').listFiles()?.findAll { it.name.endsWith('.groovy') }?.sort { it.name }?.each { File file ->
                String name = file.name - '.groovy'
                if (library.globalVariables.containsKey(name)) {
                    throw new PipelineFailure("global variable ${name} of library ${libraryName} is already defined by another library")
                }
                library.globalVariables[name] = loader.parseClass(new GroovyCodeSource(file.getText('UTF-8'), name, '/groovy/shell'), false)
            }
        }
        return library
    }

    /** This project's library directory. */
    File getDirectory() {
        return directories[NAME]
    }

    Set<String> getGlobalVariableNames() {
        return globalVariables.keySet()
    }

    Class globalVariableClass(String name) {
        return globalVariables[name]
    }

    /** Compiles a Jenkinsfile as Jenkins does (class WorkflowScript) after checking its @Library names. */
    Class compileJenkinsfile(String text) {
        (text =~ /@Library\s*\(\s*([^)]*)\)/).each { List<String> match ->
            (match[1] =~ /['"]([^'"]+)['"]/).each { List<String> name ->
                checkKnown(name[1])
            }
        }
        return classLoader.parseClass(new GroovyCodeSource(text, 'WorkflowScript', '/groovy/shell'), false)
    }

    /** Fails as Jenkins does for a library name (with an optional @version) that is not configured. */
    void checkKnown(String nameAndVersion) {
        if (!directories.containsKey(nameAndVersion.split('@')[0])) {
            throw new PipelineFailure("Library ${nameAndVersion} not found; this runner loads ${directories.keySet().join(', ')}")
        }
    }

    /** libraryResource: a file under the resources/ of one of the build's libraries. */
    byte[] resource(String path) {
        if (!path.contains('..')) {
            for (File directory : directories.values()) {
                File file = new File(new File(directory, 'resources'), path)
                if (file.isFile()) {
                    return file.bytes
                }
            }
        }
        throw new PipelineFailure("No such library resource ${path} could be found.")
    }
}
