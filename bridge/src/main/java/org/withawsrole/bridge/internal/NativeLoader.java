package org.withawsrole.bridge.internal;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.JarURLConnection;
import java.net.URL;
import java.net.URLConnection;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Enumeration;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * Loads libwithawsrole_jni once per JVM from the jar this class came from.
 *
 * <p>The jar carries {@code native/<os>-<arch>/libwithawsrole_jni.so} (or {@code .dylib}) and, next
 * to it, the library's sha256 in a {@code .sha256} file. The library is extracted into a directory
 * that only this user can enter, {@code <tmp>/withawsrole-native-<user>/} (0700, owner and mode
 * checked, never followed through a symlink), as {@code libwithawsrole_jni-<sha256>.so}. A file
 * already there is used only when it is a regular file whose sha256 matches; anything else is
 * replaced. A new copy is written to a temporary file, verified and renamed into place, so JVMs
 * extracting at the same time never see a half-written library and never write into one another
 * JVM has mapped. Should that directory be unusable (another owner, wider permissions, not a
 * directory), a fresh private directory is made instead, as if nothing had been extracted before.
 *
 * <p>A native library binds to the classloader of the class that loads it, so this must run in the
 * one JVM-wide bridge classloader, never in a per-build Groovy classloader. When a second bridge
 * classloader in the same JVM (a library upgrade with the same native code) loads the same library,
 * it gets its own copy ({@code -<n>} before the suffix): the JVM refuses one file in two loaders.
 *
 * <p>System properties: {@value #DIRECTORY_PROPERTY} chooses the parent directory instead of
 * {@code java.io.tmpdir} (for a {@code noexec} /tmp); {@value #LIBRARY_OVERRIDE_PROPERTY} names a
 * library file to load as it is (development).
 */
public final class NativeLoader {
    public static final String LIBRARY_OVERRIDE_PROPERTY = "withawsrole.native.library";
    public static final String DIRECTORY_PROPERTY = "withawsrole.native.dir";
    static final String LIBRARY_BASE_NAME = "withawsrole_jni";
    static final String PRIVATE_DIRECTORY_PREFIX = "withawsrole-native-";
    /**
     * JVM-wide record (in System properties, which every classloader sees) of which bridge
     * classloader holds which copy of a library: {@code <prefix><sha256>.<n>} = that loader's token.
     */
    static final String CLAIM_PREFIX = "org.withawsrole.native.claim.";
    private static final String CLAIM_TOKEN = UUID.randomUUID().toString();
    private static final int ATTEMPTS = 5;
    private static final long STALE_TEMPORARY_FILE_MILLIS = TimeUnit.HOURS.toMillis(1);
    static final int UNUSED_LIBRARY_DAYS = 30;
    private static final Set<PosixFilePermission> OWNER_ONLY = EnumSet.of(PosixFilePermission.OWNER_READ,
            PosixFilePermission.OWNER_WRITE, PosixFilePermission.OWNER_EXECUTE);

    private static volatile String loadedFrom;
    /** Why the shared private directory was not used on the last extraction, or null. */
    static volatile String lastDirectoryProblem;

    private NativeLoader() {
    }

    /**
     * Loads the native library unless this JVM (through this class) already did. A failure is thrown
     * again, with its reason, on every later call.
     */
    public static void ensureLoaded() {
        if (loadedFrom == null) {
            load();
        }
    }

    private static synchronized void load() {
        if (loadedFrom != null) {
            return;
        }
        String override = System.getProperty(LIBRARY_OVERRIDE_PROPERTY);
        Path library;
        Path root = null;
        if (override != null && !override.isEmpty()) {
            library = Paths.get(override).toAbsolutePath();
            if (!Files.isRegularFile(library)) {
                throw new UnsatisfiedLinkError("withAwsRole: -D" + LIBRARY_OVERRIDE_PROPERTY + "=" + override
                        + " is not a file");
            }
        } else {
            ClassLoader resources = NativeLoader.class.getClassLoader();
            String platform = currentPlatform();
            root = extractionRoot();
            libraryUrl(resources, platform);
            int copy = claimCopy(expectedDigest(resources, resourcePath(platform)));
            library = extract(resources, platform, root, copy);
        }
        try {
            System.load(library.toString());
        } catch (UnsatisfiedLinkError e) {
            UnsatisfiedLinkError error = new UnsatisfiedLinkError("withAwsRole: cannot load " + library + " on "
                    + currentPlatform() + ": " + e.getMessage()
                    + (root == null ? "" : ". If " + root + " is mounted noexec, point -D" + DIRECTORY_PROPERTY
                    + " at a directory the JVM may map code from")
                    + ". A missing GLIBC_x.y version means the controller's glibc is older than the library"
                    + " needs (README, Platforms).");
            error.initCause(e);
            throw error;
        }
        loadedFrom = library.toString();
    }

    /** Where the library was loaded from, or null before {@link #ensureLoaded}. */
    public static String loadedFrom() {
        return loadedFrom;
    }

    /** This JVM's platform in the jar's naming: linux-x86_64, linux-aarch64, darwin-x86_64, ... */
    public static String currentPlatform() {
        return platform(System.getProperty("os.name", ""), System.getProperty("os.arch", ""));
    }

    static String platform(String osName, String osArch) {
        String os = osName.toLowerCase(Locale.ROOT);
        if (os.startsWith("linux")) {
            os = "linux";
        } else if (os.startsWith("mac") || os.startsWith("darwin")) {
            os = "darwin";
        } else if (os.startsWith("windows")) {
            os = "windows";
        } else {
            os = os.replaceAll("[^a-z0-9]", "");
        }
        String arch = osArch.toLowerCase(Locale.ROOT);
        if (arch.equals("amd64") || arch.equals("x86_64") || arch.equals("x64")) {
            arch = "x86_64";
        } else if (arch.equals("aarch64") || arch.equals("arm64")) {
            arch = "aarch64";
        } else {
            arch = arch.replaceAll("[^a-z0-9_]", "");
        }
        return os + "-" + arch;
    }

    static String libraryFileName(String platform) {
        if (platform.startsWith("darwin-")) {
            return "lib" + LIBRARY_BASE_NAME + ".dylib";
        }
        if (platform.startsWith("windows-")) {
            return LIBRARY_BASE_NAME + ".dll";
        }
        return "lib" + LIBRARY_BASE_NAME + ".so";
    }

    static String resourcePath(String platform) {
        return "native/" + platform + "/" + libraryFileName(platform);
    }

    /** The extracted file's name: the library's name with its sha256 (and copy number) before the suffix. */
    static String extractedFileName(String platform, String sha256, int copy) {
        String name = libraryFileName(platform);
        int dot = name.lastIndexOf('.');
        return name.substring(0, dot) + "-" + sha256 + (copy == 0 ? "" : "-" + copy) + name.substring(dot);
    }

    /** The parent of the private directories: -Dwithawsrole.native.dir, else java.io.tmpdir. */
    static Path extractionRoot() {
        String configured = System.getProperty(DIRECTORY_PROPERTY);
        if (configured != null && !configured.trim().isEmpty()) {
            return Paths.get(configured.trim()).toAbsolutePath();
        }
        return Paths.get(System.getProperty("java.io.tmpdir")).toAbsolutePath();
    }

    /**
     * The copy of the library with this sha256 that this classloader may load: 0 unless another
     * bridge classloader in this JVM already holds copy 0 (then 1, 2, ...).
     */
    static int claimCopy(String sha256) {
        for (int copy = 0; ; copy++) {
            String key = CLAIM_PREFIX + sha256 + "." + copy;
            Object holder = System.getProperties().putIfAbsent(key, CLAIM_TOKEN);
            if (holder == null || CLAIM_TOKEN.equals(holder)) {
                return copy;
            }
        }
    }

    /** As {@link #extract(ClassLoader, String, Path, int)}, copy 0. */
    static Path extract(ClassLoader resources, String platform, Path root) {
        return extract(resources, platform, root, 0);
    }

    /**
     * Extracts the platform's library out of {@code resources} into this user's private directory
     * under {@code root} (or, when that is unusable, a fresh one) and returns the verified file.
     */
    static Path extract(ClassLoader resources, String platform, Path root, int copy) {
        String resourcePath = resourcePath(platform);
        URL library = libraryUrl(resources, platform);
        String expected = expectedDigest(resources, resourcePath);
        String fileName = extractedFileName(platform, expected, copy);
        try {
            Path shared = privateDirectory(root);
            if (shared != null) {
                removeStaleTemporaryFiles(shared);
                Path target = extractInto(shared, fileName, library, expected, resourcePath, resources);
                markUsedAndPruneUnused(target);
                return target;
            }
            Path fresh = createPrivateDirectory(root, PRIVATE_DIRECTORY_PREFIX + expected.substring(0, 16) + "-");
            fresh.toFile().deleteOnExit();
            Path target = extractInto(fresh, fileName, library, expected, resourcePath, resources);
            // Registered after the directory, so deleted before it.
            target.toFile().deleteOnExit();
            return target;
        } catch (IOException e) {
            UnsatisfiedLinkError error = new UnsatisfiedLinkError("withAwsRole: cannot extract " + resourcePath
                    + " to " + root + ": " + e);
            error.initCause(e);
            throw error;
        }
    }

    /** The platform's library in {@code resources}; its absence is an error naming where it looked. */
    static URL libraryUrl(ClassLoader resources, String platform) {
        String resourcePath = resourcePath(platform);
        URL library = resources.getResource(resourcePath);
        if (library == null) {
            throw new UnsatisfiedLinkError("withAwsRole: no native library for platform " + platform
                    + ": looked for " + resourcePath + " in " + describeSource(resources)
                    + "; this bridge jar has " + describePlatforms(resources)
                    + ". Build the bridge jar on (or for) " + platform + " (README, Platforms).");
        }
        return library;
    }

    /** The lowercase sha256 in {@code <resourcePath>.sha256}. */
    static String expectedDigest(ClassLoader resources, String resourcePath) {
        URL digestUrl = resources.getResource(resourcePath + ".sha256");
        if (digestUrl == null) {
            throw new UnsatisfiedLinkError("withAwsRole: " + resourcePath + " has no " + resourcePath
                    + ".sha256 next to it in " + describeSource(resources) + "; refusing to load an unverified library");
        }
        String expected;
        try {
            expected = new String(readAll(digestUrl), StandardCharsets.US_ASCII).trim().toLowerCase(Locale.ROOT);
        } catch (IOException e) {
            UnsatisfiedLinkError error = new UnsatisfiedLinkError("withAwsRole: cannot read " + resourcePath + ".sha256: " + e);
            error.initCause(e);
            throw error;
        }
        if (!expected.matches("[0-9a-f]{64}")) {
            throw new UnsatisfiedLinkError("withAwsRole: " + resourcePath + ".sha256 does not hold a sha256");
        }
        return expected;
    }

    /**
     * Makes {@code dir/fileName} a regular file with the expected sha256 and returns it. An existing
     * file that is right is used as it is; anything else there is replaced by a verified copy through
     * an atomic rename, so a file another JVM may have mapped is never written to.
     */
    private static Path extractInto(Path dir, String fileName, URL library, String expected, String resourcePath,
            ClassLoader resources) throws IOException {
        Path target = dir.resolve(fileName);
        for (int attempt = 1; attempt <= ATTEMPTS; attempt++) {
            if (hasDigest(target, expected)) {
                return target;
            }
            Path temporary = posix()
                    ? Files.createTempFile(dir, ".extract-", ".tmp",
                            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))
                    : Files.createTempFile(dir, ".extract-", ".tmp");
            try {
                try (InputStream in = open(library)) {
                    Files.copy(in, temporary, StandardCopyOption.REPLACE_EXISTING);
                }
                String actual = sha256Hex(temporary);
                if (!actual.equals(expected)) {
                    throw new UnsatisfiedLinkError("withAwsRole: sha256 mismatch for " + resourcePath + " from "
                            + describeSource(resources) + ": expected " + expected + ", got " + actual
                            + "; refusing to load it");
                }
                if (posix()) {
                    // Read-only: nothing rewrites a library in place while a JVM has it mapped.
                    Files.setPosixFilePermissions(temporary, PosixFilePermissions.fromString("r-x------"));
                }
                Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(temporary);
            }
            // Loop: verify what is now at the target, whoever renamed it there last.
        }
        throw new IOException(target + " kept changing while being extracted (" + ATTEMPTS + " attempts)");
    }

    /** True when {@code file} is a regular file (not a link) whose sha256 is {@code expected}. */
    private static boolean hasDigest(Path file, String expected) throws IOException {
        try {
            BasicFileAttributes attributes = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            return attributes.isRegularFile() && sha256Hex(file).equals(expected);
        } catch (NoSuchFileException e) {
            return false;
        }
    }

    /**
     * {@code root/withawsrole-native-<user>}, created 0700 if absent; null (with the reason in
     * {@link #lastDirectoryProblem}) when it is not a directory of this user's that only this user
     * can enter, or when the file system has no POSIX permissions to check.
     */
    static Path privateDirectory(Path root) throws IOException {
        lastDirectoryProblem = null;
        if (!posix()) {
            lastDirectoryProblem = "no POSIX permissions on this file system";
            return null;
        }
        Files.createDirectories(root);
        Path dir = root.resolve(PRIVATE_DIRECTORY_PREFIX + userNameForPath());
        try {
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        } catch (FileAlreadyExistsException e) {
            // Checked below like one we just made.
        }
        PosixFileAttributes attributes = Files.readAttributes(dir, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        UserPrincipal me = currentUser(root);
        if (!attributes.isDirectory()) {
            lastDirectoryProblem = dir + " is not a directory" + (attributes.isSymbolicLink() ? " (a symbolic link)" : "");
        } else if (!attributes.owner().equals(me)) {
            lastDirectoryProblem = dir + " belongs to " + attributes.owner().getName() + ", not to " + me.getName();
        } else if (!OWNER_ONLY.containsAll(attributes.permissions())) {
            lastDirectoryProblem = dir + " has permissions " + PosixFilePermissions.toString(attributes.permissions())
                    + ", not rwx------";
        } else {
            return dir;
        }
        return null;
    }

    private static volatile UserPrincipal currentUser;

    /** The owner this process gives new files (user.name can be "?" in containers: ask the file system). */
    private static UserPrincipal currentUser(Path root) throws IOException {
        UserPrincipal user = currentUser;
        if (user == null) {
            Path probe = Files.createTempFile(root, ".withawsrole-owner-", ".probe");
            try {
                user = Files.getOwner(probe, LinkOption.NOFOLLOW_LINKS);
            } finally {
                Files.deleteIfExists(probe);
            }
            currentUser = user;
        }
        return user;
    }

    private static String userNameForPath() {
        String name = System.getProperty("user.name", "").replaceAll("[^A-Za-z0-9._-]", "_");
        return name.isEmpty() || name.startsWith(".") ? "user" + name : name;
    }

    /**
     * Marks {@code target} as used now and removes other libraries in its directory that no JVM has
     * started from for {@value #UNUSED_LIBRARY_DAYS} days (earlier versions of the library), so the
     * directory does not grow by one library per upgrade. A JVM still running from one keeps its
     * mapping: Unix frees a deleted file only when nothing maps it.
     */
    private static void markUsedAndPruneUnused(Path target) {
        long now = System.currentTimeMillis();
        try {
            Files.setLastModifiedTime(target, FileTime.fromMillis(now));
        } catch (IOException ignored) {
            // Not ours to touch (cannot happen in our own directory); pruning stays conservative.
        }
        File[] libraries = target.getParent().toFile().listFiles((d, name) -> name.startsWith("lib" + LIBRARY_BASE_NAME + "-"));
        if (libraries == null) {
            return;
        }
        for (File library : libraries) {
            try {
                Path path = library.toPath();
                if (!path.equals(target)
                        && now - Files.getLastModifiedTime(path, LinkOption.NOFOLLOW_LINKS).toMillis() > TimeUnit.DAYS.toMillis(UNUSED_LIBRARY_DAYS)) {
                    Files.deleteIfExists(path);
                }
            } catch (IOException ignored) {
                // Another JVM pruned it first.
            }
        }
    }

    /** Leftovers of extractions that died half way (a JVM killed while copying). */
    private static void removeStaleTemporaryFiles(Path dir) {
        File[] leftovers = dir.toFile().listFiles((d, name) -> name.startsWith(".extract-") && name.endsWith(".tmp"));
        if (leftovers == null) {
            return;
        }
        long now = System.currentTimeMillis();
        for (File leftover : leftovers) {
            try {
                FileTime modified = Files.getLastModifiedTime(leftover.toPath(), LinkOption.NOFOLLOW_LINKS);
                if (now - modified.toMillis() > STALE_TEMPORARY_FILE_MILLIS) {
                    Files.deleteIfExists(leftover.toPath());
                }
            } catch (IOException ignored) {
                // Someone else's cleanup got there first.
            }
        }
    }

    private static boolean posix() {
        return FileSystems.getDefault().supportedFileAttributeViews().contains("posix");
    }

    static Path createPrivateDirectory(Path parent, String prefix) throws IOException {
        Files.createDirectories(parent);
        if (posix()) {
            return Files.createTempDirectory(parent, prefix, PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        }
        Path dir = Files.createTempDirectory(parent, prefix);
        File file = dir.toFile();
        // Best effort where POSIX permissions do not exist: owner only.
        file.setReadable(false, false);
        file.setWritable(false, false);
        file.setExecutable(false, false);
        file.setReadable(true, true);
        file.setWritable(true, true);
        file.setExecutable(true, true);
        return dir;
    }

    static String sha256Hex(Path file) throws IOException {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JVM has SHA-256", e);
        }
        byte[] buffer = new byte[65536];
        try (InputStream in = Files.newInputStream(file)) {
            int n;
            while ((n = in.read(buffer)) > 0) {
                digest.update(buffer, 0, n);
            }
        }
        StringBuilder hex = new StringBuilder(64);
        for (byte b : digest.digest()) {
            hex.append(String.format("%02x", b & 0xff));
        }
        return hex.toString();
    }

    private static InputStream open(URL url) throws IOException {
        URLConnection connection = url.openConnection();
        // A cached JarFile would keep the jar open after the bridge classloader is done with it.
        connection.setUseCaches(false);
        return connection.getInputStream();
    }

    private static byte[] readAll(URL url) throws IOException {
        try (InputStream in = open(url)) {
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            copy(in, out);
            return out.toByteArray();
        }
    }

    private static void copy(InputStream in, OutputStream out) throws IOException {
        byte[] buffer = new byte[8192];
        int n;
        while ((n = in.read(buffer)) > 0) {
            out.write(buffer, 0, n);
        }
    }

    /** The jar (or directory) the loader reads this class from, for error messages. */
    private static String describeSource(ClassLoader resources) {
        URL self = resources.getResource(NativeLoader.class.getName().replace('.', '/') + ".class");
        if (self == null) {
            return "classloader " + resources;
        }
        String text = self.toString();
        int bang = text.indexOf("!/");
        return bang >= 0 ? text.substring(0, bang) : text.substring(0, text.length() - (NativeLoader.class.getName().length() + 6));
    }

    /** The platforms under native/ in the jar that holds this class, for error messages. */
    private static String describePlatforms(ClassLoader resources) {
        URL self = resources.getResource(NativeLoader.class.getName().replace('.', '/') + ".class");
        TreeSet<String> platforms = new TreeSet<String>();
        try {
            if (self != null && "jar".equals(self.getProtocol())) {
                JarURLConnection connection = (JarURLConnection) self.openConnection();
                connection.setUseCaches(false);
                try (JarFile jar = connection.getJarFile()) {
                    for (Enumeration<JarEntry> entries = jar.entries(); entries.hasMoreElements();) {
                        String name = entries.nextElement().getName();
                        if (name.startsWith("native/") && name.indexOf('/', 7) > 7) {
                            platforms.add(name.substring(7, name.indexOf('/', 7)));
                        }
                    }
                }
            } else {
                for (Enumeration<URL> roots = resources.getResources("native/"); roots.hasMoreElements();) {
                    URL root = roots.nextElement();
                    if ("file".equals(root.getProtocol())) {
                        String[] names = new File(root.toURI()).list();
                        if (names != null) {
                            Collections.addAll(platforms, names);
                        }
                    }
                }
            }
        } catch (Exception e) {
            return "(platforms unknown: " + e + ")";
        }
        if (platforms.isEmpty()) {
            return "no native libraries";
        }
        List<String> list = new ArrayList<String>(platforms);
        return "native libraries for " + String.join(", ", list);
    }
}
