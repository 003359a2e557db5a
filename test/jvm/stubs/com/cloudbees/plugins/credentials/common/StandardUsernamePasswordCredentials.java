package com.cloudbees.plugins.credentials.common;

import com.cloudbees.plugins.credentials.Credentials;

/** Stand-in for the Credentials plugin's "Username with password" type (only the type is used). */
public interface StandardUsernamePasswordCredentials extends Credentials {
}
