package org.withawsrole.bridge;

/**
 * Vault refused: HTTP 403, or the login was refused. Retrying will not help; check the Vault policy or the credentials the controller logs in with.
 *
 * <p>Thrown from Rust with JNI {@code ThrowNew}, which needs the {@code (String)} constructor.
 */
public class PermissionDeniedException extends AwsRoleException {
    private static final long serialVersionUID = 1L;

    public PermissionDeniedException(String message) {
        super(message);
    }
}
