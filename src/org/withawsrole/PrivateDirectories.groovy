package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * The folders a block keeps in the workspace's @tmp on the agent: a refresh: true block's CLI,
 * config, token files and cached STS credentials, a roles: block's credentials file, ecrLogin's
 * DOCKER_CONFIG. Each block deletes its own in a finally, but a build that cannot resume after a
 * controller restart runs no finally. So each folder is named with the time after which what it
 * holds is dead (withawsrole-until-<epoch>-<random>), and every such block first deletes the
 * folders in the same @tmp that died over an hour ago by the agent's clock. A live block's folder
 * ends in the future and is never touched; other names do not match.
 */
class PrivateDirectories implements Serializable {
    private static final long serialVersionUID = 1L

    static final String PREFIX = 'withawsrole-until-'
    /** Room for the agent's clock to differ from Vault's and AWS's. */
    static final long DEAD_AFTER_SECONDS = 3600
    /** A folder's random suffix: enough for the blocks of one workspace. */
    static final int SUFFIX_LENGTH = 8

    /** A new folder's path in temporaryFiles (the workspace's @tmp), dead after endsAtEpochSeconds. */
    @NonCPS
    static String named(String temporaryFiles, long endsAtEpochSeconds) {
        return "${temporaryFiles}/${PREFIX}${endsAtEpochSeconds}-${UUID.randomUUID().toString().substring(0, SUFFIX_LENGTH)}"
    }

    /**
     * sh that deletes the dead folders beside a block's folder (never fails, prints nothing);
     * folderWord is that folder as a shell word: a checked path in single quotes, or "$DOCKER_CONFIG".
     */
    @NonCPS
    static String removalOfDeadBeside(String folderWord) {
        return "now=\$(date +%s); for dead in \"\$(dirname ${folderWord})\"/${PREFIX}*; do " +
                "ends=\${dead##*/${PREFIX}}; ends=\${ends%%-*}; " +
                "case \"\$ends\" in ''|*[!0-9]*) continue ;; esac; " +
                "if [ \"\$((ends + ${DEAD_AFTER_SECONDS}))\" -lt \"\$now\" ]; then rm -rf \"\$dead\" || true; fi; done"
    }

    /** Now, in epoch seconds (the controller's clock: a folder's end comes from Vault's answers or from now). */
    @NonCPS
    static long now() {
        return (long) (System.currentTimeMillis() / 1000L)
    }
}
