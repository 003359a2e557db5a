package org.withawsrole.replay

/**
 * How the `input` step (and Declarative's stage `input`) is answered in a replay, where nobody
 * clicks: PROCEED submits the parameters' default values as the user "replay"; ABORT rejects, and
 * the build ends ABORTED as when someone clicks Abort. REPLAY_INPUT=proceed|abort.
 */
class ReplayInput {
    static final String PROCEED = 'proceed'
    static final String ABORT = 'abort'
    static final String SUBMITTER = 'replay'

    /** What input returns for these parameters when proceeding: null, the one value, or a map. */
    static Object answer(List<Map> parameters, String submitterParameter) {
        Map<String, Object> values = new LinkedHashMap<String, Object>()
        parameters.each { Map parameter -> values[String.valueOf(parameter.name)] = parameter.defaultValue }
        if (submitterParameter) {
            values[submitterParameter] = SUBMITTER
        }
        if (values.isEmpty()) {
            return null
        }
        return values.size() == 1 ? values.values().first() : values
    }
}
