package org.withawsrole.replay

/** The build's console log: what a user sees. Whole lines only, so branches do not interleave mid-line. */
class ConsoleLog {
    private final StringBuilder text = new StringBuilder()
    private final PrintStream echo

    /** @param echo where lines are also printed as they come (the replay task's stdout), or null */
    ConsoleLog(PrintStream echo) {
        this.echo = echo
    }

    synchronized void println(String line) {
        text.append(line).append('\n')
        if (echo != null) {
            echo.println(line)
            echo.flush()
        }
    }

    synchronized String getText() {
        return text.toString()
    }
}
