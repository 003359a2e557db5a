package org.withawsrole.replay

import java.util.regex.Pattern

/**
 * Ant-style file patterns as stash, archiveArtifacts, junit and cleanWs take them: a comma-separated
 * list, relative to a directory; `*` stays within a path segment, `**` spans segments (`**\/` also
 * none), a trailing `/` means everything below.
 */
class AntPattern {
    /** What Ant's default excludes leave out of stash and archiveArtifacts (version control metadata). */
    static final List<String> DEFAULT_EXCLUDES = ['**/.git', '**/.git/**', '**/.gitignore', '**/.svn/**', '**/.hg/**'].asImmutable()

    private final List<Pattern> patterns

    AntPattern(String list) {
        patterns = (list ?: '').split(',').collect { it.trim() }.findAll { it }.collect { compile(it) }
    }

    boolean isEmpty() {
        return patterns.isEmpty()
    }

    boolean matches(String relativePath) {
        return patterns.any { it.matcher(relativePath).matches() }
    }

    static Pattern compile(String pattern) {
        String ant = pattern.replace('\\', '/')
        if (ant.endsWith('/')) {
            ant += '**'
        }
        StringBuilder regex = new StringBuilder()
        int i = 0
        while (i < ant.length()) {
            if (ant.startsWith('**/', i)) {
                regex.append('(?:.*/)?')
                i += 3
            } else if (ant.startsWith('/**', i) && i + 3 == ant.length()) {
                regex.append('(?:/.*)?')
                i += 3
            } else if (ant.startsWith('**', i)) {
                regex.append('.*')
                i += 2
            } else if (ant.charAt(i) == '*' as char) {
                regex.append('[^/]*')
                i++
            } else if (ant.charAt(i) == '?' as char) {
                regex.append('[^/]')
                i++
            } else {
                regex.append(Pattern.quote(String.valueOf(ant.charAt(i))))
                i++
            }
        }
        return Pattern.compile(regex.toString())
    }

    /** Files (not directories) under root matching includes and not excludes, as sorted relative paths. */
    static List<String> select(File root, String includes, String excludes, boolean defaultExcludes) {
        AntPattern included = new AntPattern(includes ?: '**')
        AntPattern excluded = new AntPattern(excludes)
        AntPattern versionControl = new AntPattern(defaultExcludes ? DEFAULT_EXCLUDES.join(',') : '')
        List<String> found = []
        if (!root.isDirectory()) {
            return found
        }
        root.eachFileRecurse { File file ->
            if (file.isFile()) {
                String path = root.toPath().relativize(file.toPath()).toString().replace('\\', '/')
                if (included.matches(path) && !excluded.matches(path) && !versionControl.matches(path)) {
                    found << path
                }
            }
        }
        return found.sort()
    }
}
