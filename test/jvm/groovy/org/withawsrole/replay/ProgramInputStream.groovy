package org.withawsrole.replay

/**
 * Reads a saved program state (ProgramOutputStream) with the classes of a given classloader, as a
 * controller that restarted reads program.dat with the library and Jenkinsfile compiled anew: a
 * class the fresh loader lacks, or one that changed shape, fails the read as it fails the resume.
 */
class ProgramInputStream extends ObjectInputStream {
    private final ClassLoader loader

    private ProgramInputStream(InputStream input, ClassLoader loader) {
        super(input)
        this.loader = loader
    }

    static Object read(byte[] saved, ClassLoader loader) {
        ProgramInputStream input = new ProgramInputStream(new ByteArrayInputStream(saved), loader)
        try {
            return input.readObject()
        } finally {
            input.close()
        }
    }

    @Override
    protected Class<?> resolveClass(ObjectStreamClass description) throws IOException, ClassNotFoundException {
        try {
            return Class.forName(description.name, false, loader)
        } catch (ClassNotFoundException ignored) {
            return super.resolveClass(description) // JDK classes, arrays of them
        }
    }
}
