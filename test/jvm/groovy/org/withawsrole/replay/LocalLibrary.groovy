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
    volatile Map<String, File> directories
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
            compileGlobals(library, libraryName, directory)
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

    /**
     * The libraries of a build, as Jenkins resolves them before compiling its Jenkinsfile: the
     * runner's local ones, and withAwsRole checked out of runner.libraryRepository at the version
     * its @Library line names (else the default version) when the runner has a repository.
     */
    static LocalLibrary forBuild(PipelineRunner runner, String jenkinsfile, ConsoleLog console) {
        Map<String, String> requested = requestedVersions(jenkinsfile)
        Map<String, File> directories = runner.libraries()
        requested.keySet().each { String name ->
            if (!directories.containsKey(name)) {
                throw new PipelineFailure("Library ${name} not found; this runner loads ${directories.keySet().join(', ')}")
            }
        }
        if (runner.libraryRepository == null) {
            directories.each { String name, File directory -> console.println("Loading library ${name}@local from ${directory}") }
        } else {
            String version = versionToLoad(runner, requested[NAME])
            directories[NAME] = new GitLibraryRetriever(runner.libraryRepository).checkout(NAME, version, runner.libraryCheckouts, console)
            directories.findAll { it.key != NAME }.each { String name, File directory ->
                console.println("Loading library ${name}@local from ${directory}")
            }
        }
        return compile(directories)
    }

    /** Which version of withAwsRole a build loads from the repository, or why it may not. */
    static String versionToLoad(PipelineRunner runner, String requested) {
        if (requested == null) {
            if (runner.libraryDefaultVersion == null) {
                throw new PipelineFailure("No version specified for library ${NAME}: name one (@Library('${NAME}@v1.2.3') _) " +
                        'or configure a default version')
            }
            return runner.libraryDefaultVersion
        }
        if (!runner.allowVersionOverride && requested != runner.libraryDefaultVersion) {
            throw new PipelineFailure("Version override not permitted for library ${NAME}: it loads ${runner.libraryDefaultVersion} " +
                    "(the controller's default version), not ${requested}")
        }
        return requested
    }

    /** name -> version (null when none) of every library the Jenkinsfile's @Library annotations name. */
    static Map<String, String> requestedVersions(String jenkinsfile) {
        Map<String, String> requested = new LinkedHashMap<String, String>()
        (jenkinsfile =~ /@Library\s*\(\s*([^)]*)\)/).each { List<String> match ->
            (match[1] =~ /['"]([^'"]+)['"]/).each { List<String> name ->
                List<String> nameAndVersion = name[1].split('@', 2) as List<String>
                requested[nameAndVersion[0]] = nameAndVersion.size() > 1 ? nameAndVersion[1] : null
            }
        }
        return requested
    }

    /** Compiles a Jenkinsfile as Jenkins does (class WorkflowScript); its @Library lines were resolved by forBuild. */
    Class compileJenkinsfile(String text) {
        return classLoader.parseClass(new GroovyCodeSource(text, 'WorkflowScript', '/groovy/shell'), false)
    }

    /** Fails as Jenkins does for a library name (with an optional @version) that is not configured. */
    void checkKnown(String nameAndVersion) {
        if (!directories.containsKey(nameAndVersion.split('@')[0])) {
            throw new PipelineFailure("Library ${nameAndVersion} not found; this runner loads ${directories.keySet().join(', ')}")
        }
    }

    /**
     * The `library` step: library('name[@version]') for a library this build has, or
     * library(identifier: 'name@version', retriever: modernSCM([$class: 'GitSCMSource', remote: ...]))
     * for one loaded from a Git repository (URL or path) now, its src/ and vars/ joining this build's.
     */
    Object libraryStep(Object args, File checkouts, ConsoleLog console) {
        Map options = args instanceof Map ? (Map) args : [identifier: String.valueOf(args)]
        String identifier = String.valueOf(options.identifier)
        List<String> nameAndVersion = identifier.split('@', 2) as List<String>
        String name = nameAndVersion[0]
        if (directories.containsKey(name)) {
            return new LibraryClasses(classLoader, '')
        }
        Map retriever = (Map) options.retriever
        Map scm = (Map) retriever?.scm
        if (scm == null) {
            throw new PipelineFailure("No library named ${name} found; for a library that is not configured, give its " +
                    "retriever: library(identifier: '${name}@<version>', retriever: modernSCM([\$class: 'GitSCMSource', remote: '<git url>']))")
        }
        if (scm['$class'] != 'GitSCMSource' || !scm.remote) {
            throw new PipelineFailure("library ${identifier}: this runner retrieves from GitSCMSource with a remote, not ${scm}")
        }
        if (nameAndVersion.size() < 2) {
            throw new PipelineFailure("No version specified for library ${name}: library(identifier: '${name}@<version>', ...)")
        }
        File directory = new GitLibraryRetriever(scm.remote.toString()).checkout(name, nameAndVersion[1], checkouts, console)
        add(name, directory)
        return new LibraryClasses(classLoader, '')
    }

    private void add(String libraryName, File directory) {
        Map<String, File> all = new LinkedHashMap<String, File>(directories)
        all[libraryName] = directory
        directories = Collections.unmodifiableMap(all)
        classLoader.addClasspath(new File(directory, 'src').absolutePath)
        compileGlobals(this, libraryName, directory)
    }

    private static void compileGlobals(LocalLibrary library, String libraryName, File directory) {
        new File(directory, 'vars').listFiles()?.findAll { it.name.endsWith('.groovy') }?.sort { it.name }?.each { File file ->
            String name = file.name - '.groovy'
            if (library.globalVariables.containsKey(name)) {
                throw new PipelineFailure("global variable ${name} of library ${libraryName} is already defined by another library")
            }
            library.globalVariables[name] = library.classLoader.parseClass(new GroovyCodeSource(file.getText('UTF-8'), name, '/groovy/shell'), false)
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
