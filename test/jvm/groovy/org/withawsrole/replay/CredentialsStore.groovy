package org.withawsrole.replay

import com.cloudbees.plugins.credentials.CredentialsProvider
import groovy.json.JsonSlurper

import java.util.concurrent.ConcurrentHashMap

/**
 * The runner's Jenkins credentials: what `withCredentials` resolves IDs against. Tests add entries;
 * `gradle replay` reads them from the JSON file named by REPLAY_CREDENTIALS.
 *
 * The kinds are those withAwsRole's `vaultCredentialsId` accepts, with the type names and binding
 * rules of the Credentials and Credentials Binding plugins: `usernamePassword` binds only a
 * "Username with password", `string` binds a "Secret text" and the OpenID Connect provider's
 * "OpenID Connect id token", which mints a fresh token every time it is bound.
 */
class CredentialsStore implements CredentialsProvider.ReplayStore {
    static final String USERNAME_PASSWORD = 'Username with password'
    static final String SECRET_TEXT = 'Secret text'
    static final String ID_TOKEN = 'OpenID Connect id token'

    /** Credential types as the Credentials Binding plugin names them in its errors. */
    static final Map<String, String> EXPECTED_TYPE_OF_BINDING = [
            usernamePassword: 'com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials',
            string          : 'org.jenkinsci.plugins.plaincredentials.StringCredentials',
    ].asImmutable()

    /** Which kinds each binding accepts. */
    static final Map<String, List<String>> KINDS_OF_BINDING = [
            usernamePassword: [USERNAME_PASSWORD],
            string          : [SECRET_TEXT, ID_TOKEN],
    ].asImmutable()

    private final Map<String, Entry> entries = new ConcurrentHashMap<String, Entry>()

    /** An AppRole in Jenkins terms: username = role_id, password = secret_id. */
    CredentialsStore usernamePassword(String id, String username, String password) {
        entries[id] = new Entry(USERNAME_PASSWORD, { [username: username, password: password] })
        return this
    }

    /** A Vault token, or any other single secret. */
    CredentialsStore secretText(String id, String secret) {
        entries[id] = new Entry(SECRET_TEXT, { [secret: secret] })
        return this
    }

    /** The OIDC provider plugin's id token: `mint` runs at every binding, as the plugin signs a fresh JWT. */
    CredentialsStore idToken(String id, Closure<String> mint) {
        entries[id] = new Entry(ID_TOKEN, { [secret: mint.call()] })
        return this
    }

    /**
     * An "OpenID Connect id token" credential of the OIDC provider plugin with this audience: each
     * binding mints a token for the build that binds it (OidcProvider).
     */
    CredentialsStore buildIdToken(String id, String audience, OidcProvider provider) {
        return idToken(id) { provider.mint(audience) }
    }

    /**
     * Entries from JSON: {"vault-approle": {"usernamePassword": {"username": "...", "password": "..."}},
     * "vault-token": {"secretText": "..."}, "vault-oidc": {"idTokenCommand": ["python", "mint_jwt.py"]}}.
     */
    CredentialsStore load(File json) {
        Map<String, Map> parsed = (Map<String, Map>) new JsonSlurper().parse(json)
        parsed.each { String id, Map entry ->
            if (entry.usernamePassword instanceof Map) {
                usernamePassword(id, String.valueOf(entry.usernamePassword.username), String.valueOf(entry.usernamePassword.password))
            } else if (entry.secretText != null) {
                secretText(id, String.valueOf(entry.secretText))
            } else if (entry.idTokenCommand instanceof List) {
                List<String> command = ((List) entry.idTokenCommand).collect { String.valueOf(it) }
                idToken(id) { commandOutput(command) }
            } else {
                throw new IllegalArgumentException("${json}: credential ${id} needs usernamePassword, secretText or idTokenCommand")
            }
        }
        return this
    }

    /**
     * What the binding yields for this ID: [username:, password:] or [secret:]. Fails as the
     * Credentials Binding plugin does when the ID is unknown or names another kind.
     */
    Map<String, String> bind(String binding, String id) {
        Entry entry = entries[id]
        if (entry == null) {
            throw new PipelineFailure("Could not find credentials entry with ID '${id}'")
        }
        if (!(entry.kind in KINDS_OF_BINDING[binding])) {
            throw new PipelineFailure("Credentials '${id}' is of type '${entry.kind}' where '${EXPECTED_TYPE_OF_BINDING[binding]}' was expected")
        }
        return entry.values.call()
    }

    /** The kind of the credential with this ID (USERNAME_PASSWORD, SECRET_TEXT, ID_TOKEN); fails for an unknown ID. */
    String kind(String id) {
        Entry entry = entries[id]
        if (entry == null) {
            throw new PipelineFailure("Could not find credentials entry with ID '${id}'")
        }
        return entry.kind
    }

    /** What CredentialsProvider.findCredentialById answers: whether a credential of this ID has this type. */
    @Override
    boolean has(String id, String typeName) {
        Entry entry = entries[id]
        String binding = EXPECTED_TYPE_OF_BINDING.find { String name, String type -> type == typeName }?.key
        return entry != null && binding != null && entry.kind in KINDS_OF_BINDING[binding]
    }

    private static String commandOutput(List<String> command) {
        Process process = new ProcessBuilder(command).redirectErrorStream(false).start()
        String output = process.inputStream.getText('UTF-8').trim()
        if (process.waitFor() != 0) {
            throw new PipelineFailure("the id token command ${command} failed: ${process.errorStream.getText('UTF-8').trim()}")
        }
        return output
    }

    private static class Entry {
        final String kind
        final Closure<Map<String, String>> values

        Entry(String kind, Closure<Map<String, String>> values) {
            this.kind = kind
            this.values = values
        }
    }
}
