package com.cloudbees.plugins.credentials;

/** Stand-in for the Credentials plugin's root type of every credential. */
public interface Credentials {
}
