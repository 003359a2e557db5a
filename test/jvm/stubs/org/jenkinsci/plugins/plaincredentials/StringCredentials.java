package org.jenkinsci.plugins.plaincredentials;

import com.cloudbees.plugins.credentials.Credentials;

/**
 * Stand-in for the Plain Credentials plugin's "Secret text" type, which the OpenID Connect
 * provider plugin's id token credentials also implement (only the type is used).
 */
public interface StringCredentials extends Credentials {
}
