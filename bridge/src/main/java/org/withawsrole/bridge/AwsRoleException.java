package org.withawsrole.bridge;

/**
 * Base class of every failure the bridge reports. Messages never contain secrets.
 *
 * <p>Thrown from Rust with JNI {@code ThrowNew}, which needs the {@code (String)} constructor.
 */
public class AwsRoleException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public AwsRoleException(String message) {
        super(message);
    }
}
