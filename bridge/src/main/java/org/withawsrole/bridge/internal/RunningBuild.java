package org.withawsrole.bridge.internal;

import java.lang.reflect.Method;
import java.util.Collections;
import java.util.HashMap;
import java.util.Map;
import java.util.WeakHashMap;
import org.withawsrole.bridge.InternalBridgeException;

/**
 * The Jenkins build running on this thread, read by the bridge itself.
 *
 * Why here and not from the caller: a sandboxed Jenkinsfile may call any method of a trusted
 * library's classes, so whatever the library passes in (a job name, an env) a Jenkinsfile can pass
 * too. The thread is the one thing it cannot choose: Jenkins runs a build's pipeline code on the
 * CPS VM thread of that build, where workflow-cps' {@code CpsThread.current()} names its flow
 * execution, whose owner's executable is the run. The classes are found through the thread's
 * context classloader (the bridge's own loader sees only the JDK) and called through their
 * declared types, so a non-public implementation class (e.g. the run's owner) is no obstacle.
 */
public final class RunningBuild {
    private static final String CPS_THREAD = "org.jenkinsci.plugins.workflow.cps.CpsThread";
    private static final String EXECUTION = "org.jenkinsci.plugins.workflow.cps.CpsFlowExecution";
    private static final String OWNER = "org.jenkinsci.plugins.workflow.flow.FlowExecutionOwner";
    private static final String RUN = "hudson.model.Run";
    private static final String ITEM = "hudson.model.Item";
    /** Stand-ins of the replay runner declare these instead of Run/Item (no Jenkins core there). */
    private static final String WORKFLOW_RUN = "org.jenkinsci.plugins.workflow.job.WorkflowRun";
    private static final String WORKFLOW_JOB = "org.jenkinsci.plugins.workflow.job.WorkflowJob";

    /** Absent classes: a loader without Jenkins (a test, a benchmark). */
    private static final Class<?> ABSENT = Void.class;
    /**
     * Classes found per context classloader. Jenkins gives each build its own, and a Groovy
     * classloader's lookup may search its script directories: resolve once per loader, not per
     * call. Weak keys: a finished build's loader is not kept alive (the values are plugin classes).
     */
    private static final Map<ClassLoader, Map<String, Class<?>>> CLASSES =
            Collections.synchronizedMap(new WeakHashMap<ClassLoader, Map<String, Class<?>>>());

    /** The job's full name, e.g. team-a/app/main. */
    public final String job;
    /** The build number. */
    public final String number;

    private RunningBuild(String job, String number) {
        this.job = job;
        this.number = number;
    }

    /** The build of this thread, or null when this thread runs no Pipeline build (or no Jenkins is here). */
    public static RunningBuild current() {
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        if (loader == null) {
            return null;
        }
        try {
            Class<?> cpsThread = type(loader, CPS_THREAD);
            if (cpsThread == null) {
                return null;
            }
            Object thread = cpsThread.getMethod("current").invoke(null);
            if (thread == null) {
                return null;
            }
            Object execution = method(loader, CPS_THREAD, "getExecution").invoke(thread);
            Object owner = method(loader, EXECUTION, "getOwner").invoke(execution);
            Object run = method(loader, OWNER, "getExecutable").invoke(owner);
            Method parent = method(loader, run, "getParent", RUN, WORKFLOW_RUN);
            Method number = method(loader, run, "getNumber", RUN, WORKFLOW_RUN);
            Object job = parent.invoke(run);
            Method fullName = method(loader, job, "getFullName", ITEM, WORKFLOW_JOB);
            return new RunningBuild(String.valueOf(fullName.invoke(job)), String.valueOf(number.invoke(run)));
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            throw new InternalBridgeException("cannot read the running build through workflow-cps ("
                    + e + "); this Jenkins' Pipeline API differs from the one withAwsRole knows: please report it");
        }
    }

    private static Method method(ClassLoader loader, String type, String name) throws ReflectiveOperationException {
        Class<?> declared = type(loader, type);
        if (declared == null) {
            throw new ClassNotFoundException(type);
        }
        return declared.getMethod(name);
    }

    /** The class named so as {@code loader} sees it, or null when it has none; remembered per loader. */
    private static Class<?> type(ClassLoader loader, String name) {
        Map<String, Class<?>> known;
        synchronized (CLASSES) {
            known = CLASSES.get(loader);
            if (known == null) {
                known = Collections.synchronizedMap(new HashMap<String, Class<?>>());
                CLASSES.put(loader, known);
            }
        }
        Class<?> found = known.get(name);
        if (found == null) {
            try {
                found = Class.forName(name, false, loader);
            } catch (ClassNotFoundException | LinkageError absent) {
                found = ABSENT;
            }
            known.put(name, found);
        }
        return found == ABSENT ? null : found;
    }

    /** {@code name} as declared by the first of {@code types} that {@code target} is an instance of. */
    private static Method method(ClassLoader loader, Object target, String name, String... types)
            throws ReflectiveOperationException {
        for (String type : types) {
            Class<?> declared = type(loader, type);
            if (declared != null && declared.isInstance(target)) {
                return declared.getMethod(name);
            }
        }
        throw new NoSuchMethodException(name + " on " + target.getClass().getName());
    }
}
