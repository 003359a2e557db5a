package org.withawsrole.replay

/**
 * The job's SCM, what `scm` is in a "Pipeline script from SCM" or Multibranch job, and what `checkout
 * scm` brings into the workspace: either a working tree on this machine, copied as it is now
 * (uncommitted changes included; files git ignores left out; with a .git whose HEAD is the tree's
 * commit, so `git rev-parse HEAD` answers), or a git repository (URL or path) cloned at a branch.
 * Reads like GitSCM for Jenkinsfiles that look inside it (scm.branches[0].name, scm.userRemoteConfigs[0].url).
 */
class ScmSource {
    /** A working tree to copy, or null. */
    final File workingTree
    /** A repository to clone, or null. */
    final String repository
    /** The branch to clone (repository) or to report (working tree); null: the default branch. */
    final String branch

    private ScmSource(File workingTree, String repository, String branch) {
        this.workingTree = workingTree
        this.repository = repository
        this.branch = branch
    }

    static ScmSource ofWorkingTree(File directory) {
        File tree = directory.absoluteFile
        String top = git(tree, ['rev-parse', '--show-toplevel'], true)
        return new ScmSource(top ? new File(top) : tree, null, top ? git(tree, ['rev-parse', '--abbrev-ref', 'HEAD'], true) : null)
    }

    static ScmSource ofRepository(String repository, String branch) {
        return new ScmSource(null, repository, branch)
    }

    List<Map<String, String>> getBranches() {
        return [[name: branch ? "*/${branch}".toString() : '*/master']]
    }

    List<Map<String, String>> getUserRemoteConfigs() {
        return [[url: repository ?: workingTree.toURI().toString()]]
    }

    String describe() {
        return repository != null ? "${repository}${branch ? " (branch ${branch})" : ''}" : "the working tree ${workingTree}"
    }

    /** Brings the source into target; returns what Jenkins' checkout returns (GIT_COMMIT, GIT_BRANCH, ...). */
    Map<String, String> checkoutInto(File target, StepContext log) {
        target.mkdirs()
        if (repository != null) {
            return cloneInto(repository, branch, target, log)
        }
        log.log("[replay] checkout: copying ${describe()} as it is now")
        boolean isGit = new File(workingTree, '.git').exists()
        List<String> files = isGit ?
                git(workingTree, ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], false).split('\u0000').findAll { it } :
                listFiles(workingTree)
        files.each { String path ->
            File source = new File(workingTree, path)
            if (source.isFile()) {
                File copy = new File(target, path)
                copy.parentFile.mkdirs()
                java.nio.file.Files.copy(source.toPath(), copy.toPath(), java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                        java.nio.file.StandardCopyOption.COPY_ATTRIBUTES)
            }
        }
        if (!isGit) {
            return [:]
        }
        // A local clone's .git (objects shared by hard links) under the copied files: HEAD is the tree's commit.
        File tmp = new File(target.parentFile, target.name + '@tmp')
        tmp.mkdirs()
        File clone = java.nio.file.Files.createTempDirectory(tmp.toPath(), 'replay-clone').toFile()
        git(target, ['clone', '-q', '--no-checkout', workingTree.absolutePath, clone.absolutePath], false)
        new File(target, '.git').deleteDir()
        new File(clone, '.git').renameTo(new File(target, '.git'))
        clone.deleteDir()
        git(target, ['reset', '-q'], false)
        return identity(target)
    }

    static Map<String, String> cloneInto(String repository, String branch, File target, StepContext log) {
        log.log("[replay] git: cloning ${repository}${branch ? " at ${branch}" : ''} (credentials are not used here: this machine's git access is)")
        target.mkdirs()
        List<String> arguments = ['clone', '-q']
        if (branch) {
            arguments += ['--branch', branch]
        }
        if (target.list()?.length) {
            throw new PipelineFailure("git: ${target} is not empty; clone into an empty directory (dir('name') { git ... }) or deleteDir() first")
        }
        git(target, arguments + [repository, '.'], false)
        return identity(target)
    }

    private static Map<String, String> identity(File target) {
        String commit = git(target, ['rev-parse', 'HEAD'], true)
        String branchName = git(target, ['rev-parse', '--abbrev-ref', 'HEAD'], true)
        return [GIT_COMMIT: commit, GIT_BRANCH: "origin/${branchName}".toString(), GIT_URL: git(target, ['config', 'remote.origin.url'], true)]
    }

    private static List<String> listFiles(File root) {
        List<String> files = []
        root.eachFileRecurse { File file ->
            if (file.isFile()) {
                files << root.toPath().relativize(file.toPath()).toString()
            }
        }
        return files
    }

    /** Runs git in directory; quiet: a failure gives null, else it fails the build with git's words. */
    static String git(File directory, List<String> arguments, boolean quiet) {
        Process process = new ProcessBuilder(['git'] + arguments).directory(directory).redirectErrorStream(false).start()
        process.outputStream.close()
        ByteArrayOutputStream errors = new ByteArrayOutputStream()
        Thread drain = Thread.start { errors << process.errorStream }
        String output = process.inputStream.getText('UTF-8')
        int exitCode = process.waitFor()
        drain.join()
        if (exitCode != 0) {
            if (quiet) {
                return null
            }
            throw new PipelineFailure("git ${arguments.join(' ')} failed (exit ${exitCode}): ${errors.toString('UTF-8').trim()}")
        }
        return output.trim()
    }
}
