package org.withawsrole.bridge;

/**
 * A bug in the bridge, including a panic caught inside the native library; the JVM is unaffected.
 * Deliberately not an {@link AwsRoleException}: the failures a user can act on are those, and a
 * bug must reach the caller as a bug (with its stack), never as a one-line "fix your input".
 *
 * <p>Thrown from Rust with JNI {@code ThrowNew}, which needs the {@code (String)} constructor.
 */
public class InternalBridgeException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public InternalBridgeException(String message) {
        super(message);
    }
}
