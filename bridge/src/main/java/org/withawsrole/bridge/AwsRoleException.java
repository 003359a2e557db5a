package org.withawsrole.bridge;

/**
 * Base class of the failures a caller can act on (the expected ones): bad input or configuration,
 * Vault's refusal, Vault unavailable, no native library for this platform. A caller that reports
 * failures to a user catches this one type; anything else, {@link InternalBridgeException} above
 * all, is a bug. Messages never contain secrets.
 *
 * <p>Which Rust error becomes which subclass is decided in one place, {@code rust/jni/src/ffi.rs}
 * ({@code exception_class}); its subclasses are thrown from Rust with JNI {@code ThrowNew}, which
 * needs the {@code (String)} constructor.
 */
public class AwsRoleException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public AwsRoleException(String message) {
        super(message);
    }
}
