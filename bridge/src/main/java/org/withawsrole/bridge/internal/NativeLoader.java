package org.withawsrole.bridge.internal;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.JarURLConnection;
import java.net.URL;
import java.net.URLConnection;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Enumeration;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

/**
 * Loads libwithawsrole_jni once per JVM from the jar this class came from.
 *
 * <p>The jar carries {@code native/<os>-<arch>/libwithawsrole_jni.so} (or {@code .dylib}) and, next
 * to it, the library's sha256 in a {@code .sha256} file. The library is copied into a fresh
 * directory readable only by this user (0700) whose name carries the hash, the copy is hashed again
 * and compared, and only then handed to {@link System#load}. A native library binds to the
 * classloader of the class that loads it, so this must run in the one JVM-wide bridge classloader,
 * never in a per-build Groovy classloader.
 *
 * <p>For development, the system property {@value #LIBRARY_OVERRIDE_PROPERTY} names a library file
 * to load instead.
 */
public final class NativeLoader {
    public static final String LIBRARY_OVERRIDE_PROPERTY = "withawsrole.native.library";
    static final String LIBRARY_BASE_NAME = "withawsrole_jni";

    private static volatile String loadedFrom;

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
        if (override != null && !override.isEmpty()) {
            library = Paths.get(override).toAbsolutePath();
            if (!Files.isRegularFile(library)) {
                throw new UnsatisfiedLinkError("withAwsRole: -D" + LIBRARY_OVERRIDE_PROPERTY + "=" + override
                        + " is not a file");
            }
        } else {
            String platform = currentPlatform();
            library = extract(NativeLoader.class.getClassLoader(), platform, tempRoot());
        }
        System.load(library.toString());
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

    /**
     * Copies the platform's library out of {@code resources} into a new private directory under
     * {@code tempRoot} and returns the verified copy.
     */
    static Path extract(ClassLoader resources, String platform, Path tempRoot) {
        String resourcePath = resourcePath(platform);
        URL library = resources.getResource(resourcePath);
        if (library == null) {
            throw new UnsatisfiedLinkError("withAwsRole: no native library for platform " + platform
                    + ": looked for " + resourcePath + " in " + describeSource(resources)
                    + "; this bridge jar has " + describePlatforms(resources)
                    + ". Build the bridge jar on (or for) " + platform + ".");
        }
        URL digestUrl = resources.getResource(resourcePath + ".sha256");
        if (digestUrl == null) {
            throw new UnsatisfiedLinkError("withAwsRole: " + resourcePath + " has no " + resourcePath
                    + ".sha256 next to it in " + describeSource(resources) + "; refusing to load an unverified library");
        }
        try {
            String expected = new String(readAll(digestUrl), StandardCharsets.US_ASCII).trim().toLowerCase(Locale.ROOT);
            if (!expected.matches("[0-9a-f]{64}")) {
                throw new UnsatisfiedLinkError("withAwsRole: " + resourcePath + ".sha256 does not hold a sha256");
            }
            Path dir = createPrivateDirectory(tempRoot, "withawsrole-native-" + expected.substring(0, 16) + "-");
            Path target = dir.resolve(libraryFileName(platform));
            try (InputStream in = open(library)) {
                Files.copy(in, target);
            }
            dir.toFile().deleteOnExit();
            target.toFile().deleteOnExit();
            String actual = sha256Hex(target);
            if (!actual.equals(expected)) {
                Files.delete(target);
                throw new UnsatisfiedLinkError("withAwsRole: sha256 mismatch for " + resourcePath + " from "
                        + describeSource(resources) + ": expected " + expected + ", got " + actual
                        + "; refusing to load it");
            }
            return target;
        } catch (IOException e) {
            UnsatisfiedLinkError error = new UnsatisfiedLinkError("withAwsRole: cannot extract " + resourcePath
                    + " to " + tempRoot + ": " + e);
            error.initCause(e);
            throw error;
        }
    }

    private static Path tempRoot() {
        return Paths.get(System.getProperty("java.io.tmpdir"));
    }

    static Path createPrivateDirectory(Path parent, String prefix) throws IOException {
        Files.createDirectories(parent);
        if (FileSystems.getDefault().supportedFileAttributeViews().contains("posix")) {
            return Files.createTempDirectory(parent, prefix,
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
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
