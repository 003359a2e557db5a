package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * A Vault login from a Jenkins credential named by `vaultCredentialsId`, for jobs that must not
 * use the controller's own Vault identity.
 *
 * The kind comes from the Credentials plugin (CredentialsProvider.findCredentialById for the
 * running build, which reads types, never values): a username/password is an AppRole (username =
 * role_id, password = secret_id), secret text is a token. Only when Jenkins cannot say (the ID is
 * unknown, or the lookup API is missing) is it bound as username/password first, then as secret
 * text: each failed binding is a failed (red) step in the build. Secret text that is a JWT (three base64url
 * parts, the first starting with `eyJ`, the encoding of `{"`) is an id token from the OpenID
 * Connect provider plugin, for Vault's JWT login with `jwtRole`; any other
 * secret text is a Vault token. Binding happens only around the Vault call, so the block itself
 * never sees these values.
 *
 * CPS: fetch() binds credentials with withCredentials and calls the given closure; the rest is @NonCPS.
 */
class VaultCredential implements Serializable {
    private static final long serialVersionUID = 1L

    /**
     * The kinds of credential a job's Vault login comes from, by the name of their binding step:
     * the Credentials plugin's type (OIDC id token credentials are secret text too), and the
     * variables withCredentials binds it to while Vault is called (the block never sees them).
     */
    static final Map<String, Map> KINDS = [
            usernamePassword: [type     : 'com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials',
                               variables: [usernameVariable: 'WITHAWSROLE_VAULT_ROLE_ID',
                                           passwordVariable: 'WITHAWSROLE_VAULT_SECRET_ID',].asImmutable(),].asImmutable(),
            secretText      : [type     : 'org.jenkinsci.plugins.plaincredentials.StringCredentials',
                               variables: [variable: 'WITHAWSROLE_VAULT_SECRET_TEXT'].asImmutable(),].asImmutable(),
    ].asImmutable()

    static final String JWT_SHAPE = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/

    final script
    final String credentialsId
    /** Known to be an id token (the controller's per-build login): bind it as secret text at once. */
    final boolean idToken

    VaultCredential(script, String credentialsId, boolean idToken = false) {
        this.script = script
        this.credentialsId = credentialsId
        this.idToken = idToken
    }

    /**
     * Binds the credential and calls `callVault` with the request completed by its login pairs;
     * returns what that returns (with a note naming the credential when Vault refused it), or
     * [failure: message] when the credential cannot be bound as either kind.
     */
    @SuppressWarnings('CatchException') // whatever withCredentials throws before its block starts
    Map fetch(Map<String, String> request, Closure callVault) {
        Map outcome = null
        boolean bound = false
        String notUsernamePassword = 'not tried: the controller names it as the builds\' id token'
        if (idToken) {
            return fetchAsSecretText(request, callVault, notUsernamePassword)
        }
        if (kindInJenkins(credentialsId) == 'secretText') {
            return fetchAsSecretText(request, callVault, 'not tried: Jenkins lists it as secret text')
        }
        try {
            script.withCredentials([script.usernamePassword([credentialsId: credentialsId] + KINDS.usernamePassword.variables)]) {
                bound = true
                outcome = callVault(withLogin(request, appRoleLogin(script.env)))
            }
        } catch (Exception failure) {
            if (bound || failure instanceof InterruptedException) {
                throw failure
            }
            notUsernamePassword = failure.message
        }
        if (bound) {
            return withCredentialNamed(outcome, 'as an AppRole: username = role_id, password = secret_id')
        }
        return fetchAsSecretText(request, callVault, notUsernamePassword)
    }

    /** Binds the credential as secret text (a Vault token or an id token) and calls Vault with it. */
    @SuppressWarnings('CatchException') // whatever withCredentials throws before its block starts
    Map fetchAsSecretText(Map<String, String> request, Closure callVault, String notUsernamePassword) {
        Map outcome = null
        boolean bound = false
        String kind = null
        try {
            script.withCredentials([script.string([credentialsId: credentialsId] + KINDS.secretText.variables)]) {
                bound = true
                Map login = secretTextLogin(script.env, request)
                kind = login.kind
                outcome = login.problem != null ? [failure: login.problem] : callVault(withLogin(request, login))
            }
        } catch (Exception failure) {
            if (bound || failure instanceof InterruptedException) {
                throw failure
            }
            return [failure: unusable(notUsernamePassword, failure.message)]
        }
        return withCredentialNamed(outcome, kind)
    }

    /** A refusal names the credential: the core's hints speak of the controller's VAULT_* variables. */
    @NonCPS
    private Map withCredentialNamed(Map outcome, String kind) {
        if (!outcome?.permissionDenied) {
            return outcome
        }
        Map named = new LinkedHashMap(outcome)
        String credential = StepMessages.shown(credentialsId)
        named.failure = "${outcome.failure} (the Vault login used the Jenkins credential '${credential}' ${kind})".toString()
        return named
    }

    @NonCPS
    private String unusable(String asUsernamePassword, String asSecretText) {
        return "vaultCredentialsId '${StepMessages.shown(credentialsId)}' names no credential this job can use for a Vault login " +
                "(as username/password: ${asUsernamePassword}; as secret text: ${asSecretText}); create it as " +
                "'Username with password' (AppRole role_id/secret_id), 'Secret text' (Vault token) or " +
                "'OpenID Connect id token', in a folder this job sees or globally"
    }

    /**
     * The kind (a key of KINDS) as the Credentials plugin knows the credential for
     * the running build, or null when it cannot say (no such ID, or not in a Jenkins with those
     * plugins). Library code is trusted: it may use Jenkins' API, through the library's own loader.
     */
    @NonCPS
    @SuppressWarnings('CatchException') // any failure of the lookup means "cannot say", never a failed build
    static String kindInJenkins(String credentialsId) {
        String found = null
        try {
            ClassLoader loader = VaultCredential.classLoader
            Object run = loader.loadClass('org.jenkinsci.plugins.workflow.cps.CpsThread').current()?.execution?.owner?.executable
            Class provider = loader.loadClass('com.cloudbees.plugins.credentials.CredentialsProvider')
            found = run == null ? null : KINDS.findResult { String kind, Map about ->
                provider.findCredentialById(credentialsId, loader.loadClass((String) about.type), run) != null ? kind : null
            }
        } catch (Exception cannotSay) {
            found = null
        }
        return found
    }

    @NonCPS
    static Map appRoleLogin(Object environment) {
        Map<String, String> bound = KINDS.usernamePassword.variables
        return [pairs: [vault_role_id  : AwsRoleOptions.valueOf(environment, bound.usernameVariable),
                        vault_secret_id: AwsRoleOptions.valueOf(environment, bound.passwordVariable)]]
    }

    /**
     * [pairs: login pairs, kind: how it was used] for a token or an id token, or [problem: message]
     * for an id token without a Vault role.
     */
    @NonCPS
    static Map secretTextLogin(Object environment, Map<String, String> request) {
        String secret = AwsRoleOptions.valueOf(environment, (String) KINDS.secretText.variables.variable)?.trim()
        if (!isJwt(secret)) {
            return [pairs: [vault_token: secret], kind: 'as a Vault token']
        }
        // The pipeline's own env is no source for it: the role goes with the job's own id token.
        String jwtRole = request.vault_jwt_role
        if (!jwtRole) {
            return [problem: 'the Jenkins credential in vaultCredentialsId holds an id token (a JWT): name the Vault ' +
                    "JWT role that accepts it with jwtRole: '<role>'"]
        }
        String kind = "as an id token for the Vault JWT role '${StepMessages.shown(jwtRole)}'"
        return [pairs: [vault_jwt: secret, vault_jwt_role: jwtRole], kind: kind]
    }

    @NonCPS
    static boolean isJwt(String secret) {
        return secret != null && secret ==~ JWT_SHAPE
    }

    @NonCPS
    private static Map<String, String> withLogin(Map<String, String> request, Map login) {
        Map<String, String> complete = new LinkedHashMap<String, String>(request)
        complete.putAll((Map<String, String>) login.pairs)
        return complete
    }
}
