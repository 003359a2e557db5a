package org.withawsrole.replay

/**
 * Which secrets a build left where someone could read them: in its console log, its step records
 * and the program state it saved while running (ProgramState), and in files under
 * given directories (a workspace and, when it exists, its @tmp sibling, where Jenkins and library
 * code put temporary files). Values are searched as UTF-8 bytes, so binary files count too.
 *
 *   assertTrue(build.secretsFound([accessKeyId, secretKey, sessionToken], workspace).toString(),
 *              build.secretsFound([accessKeyId, secretKey, sessionToken], workspace).empty)
 */
class SecretsScan {
    /** The secrets found in the console log, in the order given. */
    final List<String> log
    /** File path -> the secrets found in it, in the order given. */
    final Map<String, List<String>> files
    /** The secrets in the build's step records (kept with the build for good), in the order given. */
    final List<String> stepRecords
    /** The secrets in the program state the build saved while it ran (program.dat), in the order given. */
    final List<String> savedState

    private SecretsScan(List<String> log, Map<String, List<String>> files, List<String> stepRecords, List<String> savedState) {
        this.log = Collections.unmodifiableList(log)
        this.files = Collections.unmodifiableMap(files)
        this.stepRecords = Collections.unmodifiableList(stepRecords)
        this.savedState = Collections.unmodifiableList(savedState)
    }

    static SecretsScan of(String consoleLog, Collection<String> secrets, Collection<File> directories,
                          String stepRecords = '', byte[] savedStates = new byte[0]) {
        List<String> wanted = secrets.findAll { it }.collect { it.toString() }.unique()
        List<String> inLog = wanted.findAll { consoleLog.contains(it) }
        List<String> inRecords = wanted.findAll { stepRecords.contains(it) }
        // Java serialization writes a string of up to 65535 chars as its modified UTF-8: the same bytes for ASCII.
        List<String> inState = wanted.findAll { contains(savedStates, it.getBytes('UTF-8')) }
        Map<String, List<String>> inFiles = new TreeMap<String, List<String>>()
        withTmpSiblings(directories).each { File directory ->
            directory.eachFileRecurse { File file ->
                if (file.isFile()) {
                    byte[] content = file.bytes
                    List<String> found = wanted.findAll { contains(content, it.getBytes('UTF-8')) }
                    if (found) {
                        inFiles[file.absolutePath] = found
                    }
                }
            }
        }
        return new SecretsScan(inLog, inFiles, inRecords, inState)
    }

    /** Every secret found anywhere, in the order given to the scan. */
    Set<String> getAll() {
        Set<String> all = new LinkedHashSet<String>(log)
        files.values().each { all.addAll(it) }
        all.addAll(stepRecords)
        all.addAll(savedState)
        return all
    }

    boolean isEmpty() {
        return log.isEmpty() && files.isEmpty() && stepRecords.isEmpty() && savedState.isEmpty()
    }

    /** Where each secret was found, without the secret itself (a test's failure message is a log too). */
    @Override
    String toString() {
        if (empty) {
            return 'no secret found'
        }
        List<String> places = []
        if (log) {
            places << "console log: ${log.size()} secret(s)".toString()
        }
        if (stepRecords) {
            places << "step records: ${stepRecords.size()} secret(s)".toString()
        }
        if (savedState) {
            places << "saved program state: ${savedState.size()} secret(s)".toString()
        }
        files.each { String path, List<String> found -> places << "${path}: ${found.size()} secret(s)".toString() }
        return 'secrets found in ' + places.join('; ')
    }

    private static List<File> withTmpSiblings(Collection<File> directories) {
        List<File> all = []
        directories.each { File directory ->
            [directory, new File(directory.absoluteFile.parentFile, directory.name + '@tmp')].each { File candidate ->
                if (candidate.isDirectory() && !all.contains(candidate.absoluteFile)) {
                    all << candidate.absoluteFile
                }
            }
        }
        return all
    }

    /** Byte-for-byte search: ISO-8859-1 maps each byte to one char. */
    private static boolean contains(byte[] haystack, byte[] needle) {
        return new String(haystack, 'ISO-8859-1').contains(new String(needle, 'ISO-8859-1'))
    }
}
