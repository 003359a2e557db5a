package org.withawsrole.bridge;

/**
 * A bug in the bridge, including a panic caught inside the native library; the JVM is unaffected.
 *
 * <p>Thrown from Rust with JNI {@code ThrowNew}, which needs the {@code (String)} constructor.
 */
public class InternalBridgeException extends AwsRoleException {
    private static final long serialVersionUID = 1L;

    public InternalBridgeException(String message) {
        super(message);
    }
}
