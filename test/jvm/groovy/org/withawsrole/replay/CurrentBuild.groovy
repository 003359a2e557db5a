package org.withawsrole.replay

import java.util.concurrent.ConcurrentHashMap

/**
 * The `currentBuild` global (Jenkins' RunWrapper, without rawBuild): number, id, displayName,
 * description, result, currentResult, previousBuild, startTimeInMillis, duration, durationString,
 * projectName, fullProjectName, absoluteUrl, changeSets, buildCauses, resultIsBetterOrEqualTo(...).
 * As RunWrapper.setResult does, result only ever gets worse when assigned (`currentBuild.result =
 * 'UNSTABLE'`); `result` stays null while nothing set it, `currentResult` is then SUCCESS. A
 * property RunWrapper does not offer to a sandboxed Jenkinsfile fails as Jenkins' sandbox does.
 */
class CurrentBuild extends ConcurrentHashMap<String, Object> {
    /** Jenkins' Result order, best first. */
    static final List<String> RESULTS = ['SUCCESS', 'UNSTABLE', 'FAILURE', 'NOT_BUILT', 'ABORTED'].asImmutable()
    static final Set<String> PROPERTIES = ['absoluteUrl', 'buildCauses', 'buildVariables', 'changeSets', 'currentResult', 'description',
                                           'displayName', 'duration', 'durationString', 'fullDisplayName', 'fullProjectName', 'id',
                                           'keepLog', 'number', 'previousBuild', 'projectName', 'result', 'startTimeInMillis',
                                           'timeInMillis', 'upstreamBuilds'].toSet().asImmutable()

    static String worse(String a, String b) {
        return RESULTS.indexOf(a) >= RESULTS.indexOf(b) ? a : b
    }

    /** The values a build starts with. */
    void start(PipelineRun run) {
        long now = System.currentTimeMillis()
        String job = run.runner.jobName
        super.putAll([number: run.number, id: String.valueOf(run.number), displayName: "#${run.number}".toString(),
                      fullDisplayName: "${job.replace('/', ' » ')} #${run.number}".toString(), currentResult: 'SUCCESS',
                      startTimeInMillis: now, timeInMillis: now, projectName: job.tokenize('/').last(), fullProjectName: job,
                      absoluteUrl: "http://replay/job/${job.split('/').join('/job/')}/${run.number}/".toString(),
                      changeSets: [], buildCauses: [[_class: 'hudson.model.Cause$UserIdCause', shortDescription: 'Started by user replay',
                                                     userId: 'replay', userName: 'replay']],
                      buildVariables: [:], upstreamBuilds: [], keepLog: false])
        if (run.previousResult != null) {
            super.put('previousBuild', [number: run.number - 1, result: run.previousResult, currentResult: run.previousResult])
        }
    }

    @Override
    Object get(Object key) {
        if (key == 'duration' || key == 'durationString') {
            long millis = System.currentTimeMillis() - ((super.get('startTimeInMillis') ?: System.currentTimeMillis()) as long)
            return key == 'duration' ? millis : "${millis / 1000.0} sec and counting".toString()
        }
        Object value = super.get(key) // not containsKey: ConcurrentHashMap's calls get, this method
        if (value == null && !(key in PROPERTIES)) {
            throw new MissingPropertyException("Scripts not permitted to use method org.jenkinsci.plugins.workflow.support.steps.build." +
                    "RunWrapper get${String.valueOf(key).capitalize()} (the replay runner offers ${PROPERTIES.sort()})")
        }
        return value
    }

    List getBuildCauses(String type = null) {
        List causes = (List) super.get('buildCauses')
        return type == null ? causes : causes.findAll { ((Map) it)._class == type }
    }

    boolean resultIsBetterOrEqualTo(String other) {
        return RESULTS.indexOf((String) super.get('currentResult')) <= RESULTS.indexOf(other)
    }

    boolean resultIsWorseOrEqualTo(String other) {
        return RESULTS.indexOf((String) super.get('currentResult')) >= RESULTS.indexOf(other)
    }

    @Override
    Object put(String key, Object value) {
        if (key == 'result') {
            String next = String.valueOf(value)
            if (!(next in RESULTS)) {
                throw new IllegalArgumentException("currentBuild.result: ${next} is not one of ${RESULTS}")
            }
            Object previous = super.get('result')
            setRawResult(previous == null ? next : worse((String) previous, next))
            return previous
        }
        if (!(key in ['description', 'displayName', 'keepLog'])) {
            throw new ReadOnlyPropertyException(key, CurrentBuild)
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
