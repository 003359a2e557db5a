package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * Keeps a block's secrets out of the step records Jenkins keeps with a build for good.
 *
 * Jenkins stores every step's arguments in its flow nodes (workflow-cps' ArgumentsActionImpl):
 * each string, and each nested map or list, up to 1024 characters; a longer one is stored as
 * OVERSIZE_VALUE instead. Only `withCredentials` variables are replaced by their names, and a
 * library has no way to declare its own. So the two steps that must carry secrets are handed
 * arguments a little over that limit, which Jenkins then does not store:
 * - each Mask Passwords pair [var:, password:] gets a `var` of exactly 1024 characters. Pipeline's
 *   wrapper masks by `password` alone (`var` names a freestyle build variable), and a map's
 *   stored size counts its keys and values, so every pair is dropped whole;
 * - a withEnv list gets one more entry, the removal (an empty value) of a variable whose
 *   1023-character name nobody uses, so the list is dropped whole and no process sees a change.
 *
 * Both stay in the running build's saved program (program.dat) until it ends: docs/security.md.
 */
class StepRecords implements Serializable {
    private static final long serialVersionUID = 1L

    /** The longest string, list or map Jenkins stores as a step's argument (ArgumentsAction.MAX_RETAINED_LENGTH). */
    static final int STORED_LENGTH = 1024

    /** The name of the variable that the extra withEnv entry removes. */
    static final String UNUSED_VARIABLE = 'WITHAWSROLE_KEEPS_THIS_LIST_OUT_OF_THE_STEP_RECORDS_'.padRight(STORED_LENGTH - 1, '_')

    /** Mask Passwords pairs that Jenkins will not store: each `var` padded to the limit. */
    @NonCPS
    static List<Map<String, String>> unstoredPairs(List<Map<String, String>> pairs) {
        return pairs.collect { Map<String, String> pair ->
            [var: "${pair.var} (padded so that Jenkins does not store this pair) ".padRight(STORED_LENGTH, '.'), password: pair.password]
        }
    }

    /** withEnv's NAME=value list, with the entry that makes Jenkins drop it from the step records. */
    @NonCPS
    static List<String> unstoredEnvironment(List<String> environment) {
        return environment + ["${UNUSED_VARIABLE}=".toString()]
    }
}
