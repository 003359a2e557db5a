package org.withawsrole.replay

import groovy.json.JsonOutput
import org.jenkinsci.plugins.workflow.cps.CpsThread

import java.security.KeyFactory
import java.security.PrivateKey
import java.security.Signature
import java.security.spec.PKCS8EncodedKeySpec

/**
 * The OpenID Connect Provider plugin's root issuer, as the runner's stand-in: an "OpenID Connect
 * id token" credential bound in a build gets a fresh RS256 JWT whose claims are the plugin's
 * defaults for that build — `iss` = <Jenkins URL>oidc, `aud` = the credential's audience,
 * `sub` = the job's URL (${JOB_URL}, folders as job/a/job/b/), `build_number` = the build number
 * (an integer), `iat`, `exp` = iat + the token lifetime (3600 s by default).
 *
 * The build is the one running on the binding thread (CpsThread.current()), so a token can only
 * ever name the build that bound it, whatever the Jenkinsfile put in its env.
 */
class OidcProvider {
    /** Jenkins' root URL, ending in '/'. */
    final String jenkinsUrl
    private final PrivateKey key
    int lifetimeSeconds = 3600

    /** @param pkcs8Pem the signing key, PEM "PRIVATE KEY" (the world's .run/jwt-key.pem) */
    OidcProvider(String jenkinsUrl, File pkcs8Pem) {
        this.jenkinsUrl = jenkinsUrl.endsWith('/') ? jenkinsUrl : jenkinsUrl + '/'
        String base64 = pkcs8Pem.getText('US-ASCII').readLines().findAll { !it.startsWith('-----') }.join('')
        this.key = KeyFactory.getInstance('RSA').generatePrivate(new PKCS8EncodedKeySpec(Base64.mimeDecoder.decode(base64)))
    }

    String getIssuer() {
        return "${jenkinsUrl}oidc".toString()
    }

    /** ${JOB_URL} of a job: <root>job/a/job/b/ for the full name a/b. */
    String jobUrl(String fullName) {
        return jenkinsUrl + fullName.tokenize('/').collect { "job/${URLEncoder.encode(it, 'UTF-8').replace('+', '%20')}/" }.join('')
    }

    /** A token for the build running on this thread. */
    String mint(String audience) {
        CpsThread thread = CpsThread.current()
        if (thread == null) {
            throw new PipelineFailure('an OpenID Connect id token can only be bound inside a build')
        }
        Object run = thread.execution.owner.executable
        long now = System.currentTimeMillis().intdiv(1000L)
        Map<String, Object> claims = [iss: issuer, aud: audience, sub: jobUrl(String.valueOf(run.parent.fullName)),
                                      build_number: run.number, iat: now, exp: now + lifetimeSeconds]
        String header = encode(JsonOutput.toJson([alg: 'RS256', typ: 'JWT', kid: 'replay']).getBytes('UTF-8'))
        String body = encode(JsonOutput.toJson(claims).getBytes('UTF-8'))
        Signature signature = Signature.getInstance('SHA256withRSA')
        signature.initSign(key)
        signature.update("${header}.${body}".toString().getBytes('US-ASCII'))
        return "${header}.${body}.${encode(signature.sign())}".toString()
    }

    private static String encode(byte[] bytes) {
        return Base64.urlEncoder.withoutPadding().encodeToString(bytes)
    }
}
