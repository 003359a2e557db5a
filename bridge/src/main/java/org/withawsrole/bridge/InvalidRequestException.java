package org.withawsrole.bridge;

/**
 * The request or the configuration is wrong; nothing was sent to Vault. Fix the input, do not retry.
 *
 * <p>Thrown from Rust with JNI {@code ThrowNew}, which needs the {@code (String)} constructor.
 */
public class InvalidRequestException extends AwsRoleException {
    private static final long serialVersionUID = 1L;

    public InvalidRequestException(String message) {
        super(message);
    }
}
