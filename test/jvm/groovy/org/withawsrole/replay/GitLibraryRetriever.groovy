package org.withawsrole.replay

import java.nio.file.Files

/**
 * A shared library's version checked out of a Git repository into a fresh directory, as Jenkins'
 * Modern SCM retriever (GitSCMSource) does for every build: the version is a tag, a branch or a
 * commit of the remote (a URL or a local path); nothing is built, the checkout is the library.
 */
class GitLibraryRetriever {
    final String remote

    GitLibraryRetriever(String remote) {
        this.remote = remote
    }

    /** Checks out `version` of library `name` into a new directory under `parent` and returns it. */
    File checkout(String name, String version, File parent, ConsoleLog console) {
        parent.mkdirs()
        File directory = Files.createTempDirectory(parent.toPath(), "${name}-").toFile()
        git(parent, 'clone', '--quiet', '--no-checkout', remote, directory.absolutePath)
        String commit = resolve(directory, version)
        if (commit == null) {
            directory.deleteDir()
            throw new PipelineFailure("No version ${version} found for library ${name} in ${remote} (no such tag, branch or commit)")
        }
        console.println("Loading library ${name}@${version}")
        console.println("Checking out ${remote} at ${version} (${commit})")
        git(directory, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', commit)
        // The library is its files, as Jenkins copies them: no repository around them.
        new File(directory, '.git').deleteDir()
        return directory
    }

    /** The commit `version` names in the clone: a tag, then a branch, then a commit id; null for none. */
    private static String resolve(File clone, String version) {
        List<String> candidates = ["refs/tags/${version}", "refs/remotes/origin/${version}"]*.toString()
        if (version ==~ /[0-9a-f]{7,40}/) {
            candidates << version
        }
        for (String candidate : candidates) {
            Process process = new ProcessBuilder('git', 'rev-parse', '-q', '--verify', "${candidate}^{commit}".toString())
                    .directory(clone).redirectErrorStream(true).start()
            String out = process.inputStream.getText('UTF-8').trim()
            if (process.waitFor() == 0) {
                return out
            }
        }
        return null
    }

    private void git(File directory, String... args) {
        List<String> command = ['git'] + (args as List<String>)
        Process process = new ProcessBuilder(command).directory(directory).redirectErrorStream(true).start()
        String out = process.inputStream.getText('UTF-8').trim()
        if (process.waitFor() != 0) {
            throw new PipelineFailure("Could not check out library repository ${remote}: ${out.readLines() ? out.readLines().last() : 'git failed'}")
        }
    }
}
