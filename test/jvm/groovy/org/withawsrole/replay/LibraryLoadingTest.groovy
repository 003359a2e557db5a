package org.withawsrole.replay

import org.junit.Before
import org.junit.Test

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEachFailsWithOneLine
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * Libraries loaded as Jenkins loads them: @Library lines resolved before the Jenkinsfile compiles,
 * and the `library` step with a Modern SCM retriever, checking a tag of a Git repository out into
 * a fresh directory. The repository here is a small library made by the test, with two tags.
 */
class LibraryLoadingTest extends ReplayTestBase {
    File repository
    @Before
    void greeterLibraryWithTwoTags() {
        repository = temporary.newFolder('greeter')
        git('init', '--quiet')
        ['v1', 'v2'].each { String version ->
            write('vars/greet.groovy', "def call(String who) { echo \"hello \${who} from greeter ${version}\" }\n")
            write('src/org/example/Greeting.groovy', "package org.example\nclass Greeting { static String version() { '${version}' } }\n")
            git('add', '-A')
            git('-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '--quiet', '-m', version)
            git('tag', version)
        }
        runner.libraryCheckouts = temporary.newFolder('checkouts')
    }

    @Test
    void library_step_with_a_git_retriever_loads_the_named_tag() {
        BuildResult build = runner.run("""
            def greeter = library(identifier: 'greeter@v1', retriever: modernSCM([\$class: 'GitSCMSource', remote: '${repository}']))
            greet('replay')
            echo "class from the library: \${greeter.org.example.Greeting.version()}"
        """)
        assertSucceeded(build, 'Loading library greeter@v1', 'hello replay from greeter v1', 'class from the library: v1')
        assertEquals('checked out without its repository', [], runner.libraryCheckouts.listFiles().findAll { new File(it, '.git').exists() })
    }

    @Test
    void library_step_failures_are_one_line() {
        String retriever = "retriever: modernSCM([\$class: 'GitSCMSource', remote: '${repository}'])"
        assertEachFailsWithOneLine(runner, [
                ["library(identifier: 'greeter@v9', ${retriever})", "No version v9 found for library greeter in ${repository}"],
                ["library(identifier: 'greeter', ${retriever})", 'No version specified for library greeter'],
                ["library 'greeter@v1'", 'No library named greeter found; for a library that is not configured'],
        ])
    }

    @Test
    void at_library_lines_name_libraries_and_versions() {
        assertEquals([withAwsRole: 'v1.2.3', other: null, third: 'main'],
                LocalLibrary.requestedVersions("@Library('withAwsRole@v1.2.3') _\n@Library(['other', \"third@main\"]) _\nnode { }"))
        assertFailedWithOneLine(runner.run("@Library('withAwsRole') _\n@Library('unknown@v1') _\necho 'never here'"),
                'Library unknown not found; this runner loads withAwsRole')
    }

    @Test
    void with_a_repository_the_library_comes_from_it_at_the_version_named() {
        runner.libraryRepository = repository.absolutePath
        runner.libraryDefaultVersion = 'v2'
        BuildResult pinned = runner.run("@Library('withAwsRole@v1') _\necho 'pinned'")
        assertSucceeded(pinned, 'Loading library withAwsRole@v1')
        BuildResult byDefault = runner.run("@Library('withAwsRole') _\ngreet('default')")
        assertLogShows(byDefault, 'hello default from greeter v2')
        runner.allowVersionOverride = false
        assertFailedWithOneLine(runner.run("@Library('withAwsRole@v1') _\necho 'never here'"),
                'Version override not permitted for library withAwsRole: it loads v2')
        runner.libraryDefaultVersion = null
        assertFailedWithOneLine(runner.run("@Library('withAwsRole') _\necho 'never here'"), 'No version specified for library withAwsRole')
    }

    private void write(String path, String text) {
        File file = new File(repository, path)
        file.parentFile.mkdirs()
        file.text = text
    }

    private void git(String... args) {
        Process process = new ProcessBuilder((['git'] + (args as List)) as String[]).directory(repository).redirectErrorStream(true).start()
        String out = process.inputStream.text
        assertEquals(out, 0, process.waitFor())
    }
}
