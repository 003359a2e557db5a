package org.withawsrole.replay

import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.customizers.ImportCustomizer

/**
 * The shared library (src/, vars/, resources/ of a directory), compiled afresh into a new
 * GroovyClassLoader, as Jenkins does for every build and every Replay. Classes of src/ are compiled
 * from source by that loader when vars/ or a Jenkinsfile first names them; nothing of src/ is on
 * the test classpath.
 */
class LocalLibrary {
    static final String NAME = 'withAwsRole'

    final File directory
    final GroovyClassLoader classLoader
    private final Map<String, Class> globalVariables = [:]

    private LocalLibrary(File directory, GroovyClassLoader classLoader) {
        this.directory = directory
        this.classLoader = classLoader
    }

    static LocalLibrary compile(File directory) {
        CompilerConfiguration configuration = new CompilerConfiguration()
        configuration.scriptBaseClass = PipelineScript.name
        configuration.sourceEncoding = 'UTF-8'
        // Jenkins adds these imports to pipeline and library code.
        configuration.addCompilationCustomizers(new ImportCustomizer()
                .addImport('Library', Library.name)
                .addImports('com.cloudbees.groovy.cps.NonCPS'),
                new StepCallsInClosures())
        GroovyClassLoader loader = new GroovyClassLoader(LocalLibrary.classLoader, configuration)
        loader.addClasspath(new File(directory, 'src').absolutePath)
        LocalLibrary library = new LocalLibrary(directory, loader)
        File vars = new File(directory, 'vars')
        vars.listFiles()?.findAll { it.name.endsWith('.groovy') }?.sort { it.name }?.each { File file ->
            String name = file.name - '.groovy'
            library.globalVariables[name] = loader.parseClass(new GroovyCodeSource(file.getText('UTF-8'), name, '/groovy/shell'), false)
        }
        return library
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
                if (name[1].split('@')[0] != NAME) {
                    throw new PipelineFailure("Library ${name[1]} not found; this runner loads only ${NAME} (from ${directory})")
                }
            }
        }
        return classLoader.parseClass(new GroovyCodeSource(text, 'WorkflowScript', '/groovy/shell'), false)
    }

    /** libraryResource: a file under resources/. */
    byte[] resource(String path) {
        File file = new File(new File(directory, 'resources'), path)
        if (path.contains('..') || !file.isFile()) {
            throw new PipelineFailure("No such library resource ${path} could be found.")
        }
        return file.bytes
    }
}
