package org.withawsrole.replay

/**
 * `bat` and `powershell` on the emulated Windows agent (PipelineRunner.windowsAgent): this machine has
 * neither cmd.exe nor Windows PowerShell, so a script runs line by line through the small part of
 * each language Jenkinsfiles use around a CLI call: cmd's `@echo off`, `echo`, `set NAME=value`,
 * `exit /b N` and %NAME% expansion; PowerShell's `Write-Output`/`echo`, `$env:NAME = 'value'`,
 * `exit N` and $env:NAME expansion. Any other line runs as a program with its arguments, in the
 * block's environment and directory, and stops the script when it fails (as `bat` does only at the
 * end; scripts here are short). What it checks: the variables a block hands its scripts, and what
 * a step does when isUnix() is false; not cmd's or PowerShell's own semantics.
 */
class WindowsShell {
    /** Runs script; returns [exitCode:, stdout:]; output lines go to out. */
    static Map<String, Object> run(String dialect, String script, Map<String, String> environment, File directory, Closure<Void> out) {
        Map<String, String> variables = new LinkedHashMap<String, String>(environment)
        StringBuilder stdout = new StringBuilder()
        Closure<Void> print = { String line -> stdout.append(line).append('\n'); out.call(line) }
        for (String raw : script.readLines()) {
            String line = expand(dialect, raw.trim(), variables)
            if (line.isEmpty() || line.equalsIgnoreCase('@echo off') || line.startsWith('REM ') || line.startsWith('#')) {
                continue
            }
            List<String> words = words(line)
            String command = words[0].toLowerCase()
            if (command in ['echo', 'write-output']) {
                print.call(line.substring(words[0].length()).trim().replaceAll(/^["']|["']$/, ''))
            } else if (dialect == 'bat' && command == 'set' && line.contains('=')) {
                String assignment = line.substring(4)
                variables[assignment.substring(0, assignment.indexOf('='))] = assignment.substring(assignment.indexOf('=') + 1)
            } else if (dialect == 'powershell' && line =~ '^\\$env:\\w+\\s*=') {
                String name = (line =~ '^\\$env:(\\w+)')[0][1]
                variables[name] = line.substring(line.indexOf('=') + 1).trim().replaceAll(/^["']|["']$/, '')
            } else if (command == 'exit') {
                return [exitCode: (words.last() ==~ /\d+/ ? words.last() as int : 0), stdout: stdout.toString()]
            } else {
                ProcessBuilder builder = new ProcessBuilder(words).directory(directory).redirectErrorStream(true)
                builder.environment().clear()
                builder.environment().putAll(variables)
                Process process = builder.start()
                process.outputStream.close()
                process.inputStream.withReader('UTF-8') { Reader reader -> reader.eachLine { String output -> print.call(output) } }
                int exitCode = process.waitFor()
                if (exitCode != 0) {
                    return [exitCode: exitCode, stdout: stdout.toString()]
                }
            }
        }
        return [exitCode: 0, stdout: stdout.toString()]
    }

    private static String expand(String dialect, String line, Map<String, String> variables) {
        if (dialect == 'bat') {
            return line.replaceAll(/%(\w+)%/) { List<String> match -> variables[match[1]] ?: '' }
        }
        return line.replaceAll('\\$env:(\\w+)(?!\\s*=)') { List<String> match -> variables[match[1]] ?: '' }
    }

    /** Words of a command line; double or single quotes group. */
    private static List<String> words(String line) {
        List<String> words = []
        (line =~ /"([^"]*)"|'([^']*)'|(\S+)/).each { List<String> match -> words << (match[1] ?: match[2] ?: match[3] ?: '') }
        return words
    }
}
