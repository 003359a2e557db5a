package org.withawsrole.replay;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectOutputStream;
import java.io.OutputStream;
import java.io.Serializable;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Java serialization of a build's program state (ProgramState), as Jenkins' River marshalling
 * writes program.dat: the library's objects and closures are written as they are, so one that
 * holds something that cannot be serialized fails with java.io.NotSerializableException naming its
 * class; the runner's own objects are written as references (Jenkins' pickles), a script with its
 * binding and fields. Java, not Groovy: enableReplaceObject is protected in java.base, which Groovy
 * 2.4's metaclass does not reach on Java 17.
 */
public class ProgramOutputStream extends ObjectOutputStream {
    static final String RUNNER_PACKAGE = "org.withawsrole.replay.";

    private ProgramOutputStream(OutputStream out) throws IOException {
        super(out);
        enableReplaceObject(true);
    }

    /** The bytes of {@code program}; throws NotSerializableException when part of it cannot be saved. */
    public static byte[] write(Object program) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ProgramOutputStream out = new ProgramOutputStream(bytes)) {
            out.writeObject(program);
        }
        return bytes.toByteArray();
    }

    @Override
    protected Object replaceObject(Object written) throws IOException {
        if (written instanceof PipelineScript) {
            return ScriptState.of((PipelineScript) written);
        }
        if (written != null && written.getClass().getName().startsWith(RUNNER_PACKAGE) && !(written instanceof Serializable)) {
            return new RunnerReference(written.getClass().getName());
        }
        return written;
    }

    /** A script as CpsScript saves it: its class, binding variables and own fields (@Field). */
    public static final class ScriptState implements Serializable {
        private static final long serialVersionUID = 1L;
        final String scriptClass;
        final Map<String, Object> binding;
        final Map<String, Object> fields;

        ScriptState(String scriptClass, Map<String, Object> binding, Map<String, Object> fields) {
            this.scriptClass = scriptClass;
            this.binding = binding;
            this.fields = fields;
        }

        @SuppressWarnings("unchecked")
        static ScriptState of(PipelineScript script) {
            Map<String, Object> fields = new LinkedHashMap<>();
            for (Class<?> type = script.getClass(); type != PipelineScript.class && type != null; type = type.getSuperclass()) {
                for (Field field : type.getDeclaredFields()) {
                    if (field.isSynthetic() || Modifier.isStatic(field.getModifiers()) || field.getName().contains("$")) {
                        continue;
                    }
                    try {
                        field.setAccessible(true);
                        fields.put(type.getName() + "." + field.getName(), field.get(script));
                    } catch (IllegalAccessException | RuntimeException e) {
                        throw new IllegalStateException("cannot read " + field + " to save the program", e);
                    }
                }
            }
            Map<String, Object> binding = new LinkedHashMap<>((Map<String, Object>) script.getBinding().getVariables());
            return new ScriptState(script.getClass().getName(), binding, fields);
        }
    }

    /** One of the runner's objects (env, currentBuild, the build itself), which a resumed build finds again by kind. */
    public static final class RunnerReference implements Serializable {
        private static final long serialVersionUID = 1L;
        final String kind;

        RunnerReference(String kind) {
            this.kind = kind;
        }
    }
}
