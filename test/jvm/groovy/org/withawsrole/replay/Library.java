package org.withawsrole.replay;

import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;

/**
 * Stand-in for Jenkins' {@code @Library}, so that Jenkinsfiles starting with
 * {@code @Library('withAwsRole') _} compile here; {@link LocalLibrary} checks the names.
 */
@Retention(RetentionPolicy.SOURCE)
public @interface Library {
    String[] value();
}
