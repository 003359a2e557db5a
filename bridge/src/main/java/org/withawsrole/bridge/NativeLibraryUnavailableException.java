package org.withawsrole.bridge;

/**
 * The bridge jar has no native library this JVM can load (another platform, a libc too old, a
 * private directory that cannot be made): the message says which platform, what was looked for
 * and which platforms the jar has. The cause is the loader's {@link UnsatisfiedLinkError}.
 */
public class NativeLibraryUnavailableException extends AwsRoleException {
    private static final long serialVersionUID = 1L;

    public NativeLibraryUnavailableException(String message, Throwable cause) {
        super(message);
        initCause(cause);
    }
}
