package org.withawsrole.replay

/**
 * The delegate of one Declarative section's closure while DeclarativeModel reads it: every call is
 * one entry of the section, handed to `entry` as (name, arguments); bare words (`agent any`) read
 * as Bare; assignments are not section entries.
 */
class DeclarativeSection extends GroovyObjectSupport {
    private final DeclarativeModel model
    private final String where
    private final Closure entry

    DeclarativeSection(DeclarativeModel model, String where, Closure entry) {
        this.model = model
        this.where = where
        this.entry = entry
    }

    def methodMissing(String name, Object args) {
        return entry.call(name, args instanceof Object[] ? (Object[]) args : [args] as Object[])
    }

    def propertyMissing(String name) {
        return new Bare(name)
    }

    def propertyMissing(String name, Object value) {
        model.errors << "\"${name}\" is not a valid ${where} entry".toString()
    }

    /** A bare word in a section (`agent any`). */
    static class Bare {
        final String name

        Bare(String name) {
            this.name = name
        }

        @Override
        String toString() {
            return name
        }
    }
}
