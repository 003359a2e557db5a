package org.withawsrole.replay

/** What the library step returns: library('x').org.example.Thing names a class of the build's libraries, as in Jenkins. */
class LibraryClasses {
    private final GroovyClassLoader loader
    private final String prefix

    LibraryClasses(GroovyClassLoader loader, String prefix) {
        this.loader = loader
        this.prefix = prefix
    }

    def propertyMissing(String name) {
        String qualified = prefix + name
        try {
            return loader.loadClass(qualified)
        } catch (ClassNotFoundException ignored) {
            return new LibraryClasses(loader, qualified + '.')
        }
    }
}
