package org.withawsrole.bridge.internal;

import java.lang.reflect.Method;
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
            Object thread = Class.forName(CPS_THREAD, false, loader).getMethod("current").invoke(null);
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
        } catch (ClassNotFoundException notJenkins) {
            return null;
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            throw new InternalBridgeException("cannot read the running build through workflow-cps ("
                    + e + "); this Jenkins' Pipeline API differs from the one withAwsRole knows: please report it");
        }
    }

    private static Method method(ClassLoader loader, String type, String name) throws ReflectiveOperationException {
        return Class.forName(type, false, loader).getMethod(name);
    }

    /** {@code name} as declared by the first of {@code types} that {@code target} is an instance of. */
    private static Method method(ClassLoader loader, Object target, String name, String... types)
            throws ReflectiveOperationException {
        for (String type : types) {
            Class<?> declared;
            try {
                declared = Class.forName(type, false, loader);
            } catch (ClassNotFoundException absent) {
                continue;
            }
            if (declared.isInstance(target)) {
                return declared.getMethod(name);
            }
        }
        throw new NoSuchMethodException(name + " on " + target.getClass().getName());
    }
}
