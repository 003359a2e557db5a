package org.withawsrole.jvm;

import groovy.lang.GroovyClassLoader;
import java.beans.Introspector;
import java.lang.ref.WeakReference;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What Jenkins does when a build ends so that its Groovy classloader can be collected
 * (workflow-cps' CpsFlowExecution.cleanUpHeap / cleanUpLoader): Groovy 2.4 keeps a ClassInfo for
 * every class it has seen in a JVM-wide map, which lets go of a build's classes only when memory
 * runs short. ManyBuildsTest does the same after each build, and no more, so that what it still
 * finds reachable is held by something else: by this library, or by the runner.
 */
public final class JenkinsHeapCleanup {
    private JenkinsHeapCleanup() {
    }

    /** Cleans up after one finished build whose library was compiled by {@code loader}. */
    public static void afterBuild(ClassLoader loader) throws Exception {
        cleanUpLoader(loader, new HashSet<ClassLoader>(), new HashSet<Class<?>>());
    }

    private static void cleanUpLoader(ClassLoader loader, Set<ClassLoader> seenLoaders, Set<Class<?>> seenClasses) throws Exception {
        if (!(loader instanceof GroovyClassLoader) || !seenLoaders.add(loader)) {
            return;
        }
        cleanUpLoader(loader.getParent(), seenLoaders, seenClasses);
        cleanUpGlobalClassValue(loader);
        GroovyClassLoader groovyLoader = (GroovyClassLoader) loader;
        for (Class<?> type : groovyLoader.getLoadedClasses()) {
            if (seenClasses.add(type)) {
                Introspector.flushFromCaches(type);
                cleanUpLoader(type.getClassLoader(), seenLoaders, seenClasses);
            }
        }
        groovyLoader.clearCache();
    }

    /** Removes the ClassInfo entries of {@code loader}'s classes from Groovy's global ClassValue map. */
    @SuppressWarnings("unchecked")
    private static void cleanUpGlobalClassValue(ClassLoader loader) throws Exception {
        Class<?> classInfo = Class.forName("org.codehaus.groovy.reflection.ClassInfo");
        Field globalClassValueField = classInfo.getDeclaredField("globalClassValue");
        globalClassValueField.setAccessible(true);
        Object globalClassValue = globalClassValueField.get(null);
        Class<?> preJava7 = Class.forName("org.codehaus.groovy.reflection.GroovyClassValuePreJava7");
        if (!preJava7.isInstance(globalClassValue)) {
            return; // -Dgroovy.use.classvalue=true: a real ClassValue, nothing to do
        }
        Field mapField = preJava7.getDeclaredField("map");
        mapField.setAccessible(true);
        Object map = mapField.get(globalClassValue);
        Class<?> mapType = Class.forName("org.codehaus.groovy.reflection.GroovyClassValuePreJava7$GroovyClassValuePreJava7Map");
        Method values = mapType.getMethod("values");
        values.setAccessible(true);
        Method remove = mapType.getMethod("remove", Object.class);
        remove.setAccessible(true);
        Method getValue = Class.forName("org.codehaus.groovy.util.AbstractConcurrentMapBase$Entry").getMethod("getValue");
        getValue.setAccessible(true);
        Field classRef = classInfo.getDeclaredField("classRef");
        classRef.setAccessible(true);
        List<Class<?>> ours = new ArrayList<Class<?>>();
        for (Object entry : (Collection<Object>) values.invoke(map)) {
            Class<?> type = ((WeakReference<Class<?>>) classRef.get(getValue.invoke(entry))).get();
            if (type != null && type.getClassLoader() == loader) {
                ours.add(type);
            }
        }
        for (Class<?> type : ours) {
            remove.invoke(map, type);
        }
    }
}
