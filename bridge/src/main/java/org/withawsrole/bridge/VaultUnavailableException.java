package org.withawsrole.bridge;

/**
 * Vault could not be reached or answered 429/5xx, is sealed, or the deadline passed (after retries).
 *
 * <p>Thrown from Rust with JNI {@code ThrowNew}, which needs the {@code (String)} constructor.
 */
public class VaultUnavailableException extends AwsRoleException {
    private static final long serialVersionUID = 1L;

    public VaultUnavailableException(String message) {
        super(message);
    }
}
