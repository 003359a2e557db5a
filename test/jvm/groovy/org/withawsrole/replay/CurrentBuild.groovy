package org.withawsrole.replay

import java.util.concurrent.ConcurrentHashMap

/**
 * The `currentBuild` global: a map (number, displayName, result, currentResult, ...) whose result,
 * as Jenkins' RunWrapper.setResult does, only ever gets worse when assigned (`currentBuild.result =
 * 'UNSTABLE'`); `result` stays null while nothing set it, `currentResult` is then SUCCESS.
 */
class CurrentBuild extends ConcurrentHashMap<String, Object> {
    /** Jenkins' Result order, best first. */
    static final List<String> RESULTS = ['SUCCESS', 'UNSTABLE', 'FAILURE', 'NOT_BUILT', 'ABORTED'].asImmutable()

    static String worse(String a, String b) {
        return RESULTS.indexOf(a) >= RESULTS.indexOf(b) ? a : b
    }

    @Override
    Object put(String key, Object value) {
        if (key == 'result') {
            String next = String.valueOf(value)
            if (!(next in RESULTS)) {
                throw new IllegalArgumentException("currentBuild.result: ${next} is not one of ${RESULTS}")
            }
            Object previous = get('result')
            setRawResult(previous == null ? next : worse((String) previous, next))
            return previous
        }
        return super.put(key, value)
    }

    /** Sets the result as is (null: none yet), as Declarative does around a post condition. */
    void setRawResult(String result) {
        if (result == null) {
            remove('result')
        } else {
            super.put('result', result)
        }
        super.put('currentResult', result ?: 'SUCCESS')
    }
}
