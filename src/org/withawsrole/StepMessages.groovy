package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * The text of the steps' error lines. Jenkins prints `error(message)` as `ERROR: <message>`; a line
 * break inside would split it, and the next lines would read like the build's own output.
 */
class StepMessages implements Serializable {
    private static final long serialVersionUID = 1L

    /** Longest value shown in a message: enough to recognise it, not a page of it. */
    static final int MAX_SHOWN = 100

    static final Map<Character, String> ESCAPES = [
            ('\n' as Character): '\\n',
            ('\r' as Character): '\\r',
            ('\t' as Character): '\\t',
    ].asImmutable()

    /** A value from the Jenkinsfile, for a message: control characters escaped, cut at MAX_SHOWN. */
    @NonCPS
    static String shown(Object value) {
        String text = String.valueOf(value)
        StringBuilder shown = new StringBuilder()
        for (char c : (text.length() > MAX_SHOWN ? text.substring(0, MAX_SHOWN) : text).toCharArray()) {
            if (ESCAPES.containsKey(c)) {
                shown.append(ESCAPES[c])
            } else if (Character.isISOControl(c)) {
                shown.append(String.format('\\u%04x', (int) c))
            } else {
                shown.append(c)
            }
        }
        return text.length() > MAX_SHOWN ? "${shown}…" : shown.toString()
    }

    /** A whole message on one line: line breaks and tabs (Vault's and AWS's texts have them) become spaces. */
    @NonCPS
    static String oneLine(Object message) {
        return String.valueOf(message).replaceAll(/\s*[\r\n\t]+\s*/, ' ').replaceAll(/\p{Cntrl}/, '?').trim()
    }
}
