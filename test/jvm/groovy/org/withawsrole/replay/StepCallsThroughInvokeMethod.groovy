package org.withawsrole.replay

/**
 * A script's metaclass that hides its step methods from closures: a closure calls its owner's
 * methods through the owner's metaclass (ClosureMetaClass.pickMethod), past the owner's
 * invokeMethod; with the step methods hidden it falls back to invokeMethod, where every step call
 * is recorded and the program saved (PipelineScript.invokeMethod, ProgramState).
 */
class StepCallsThroughInvokeMethod extends DelegatingMetaClass {
    StepCallsThroughInvokeMethod(MetaClass real) {
        super(real)
        initialize()
    }

    @Override
    MetaMethod pickMethod(String name, Class[] types) {
        return ProgramState.isStepName(name) ? null : super.pickMethod(name, types)
    }
}
