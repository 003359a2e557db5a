package org.withawsrole.replay

/**
 * A build parameter as Declarative `parameters { }`, `properties([parameters([...])])` and `input`
 * declare it: its type, name and default value (Jenkins' types: string, text, password, booleanParam,
 * choice, whose default is its first choice). A value the build is started with (REPLAY_PARAMS)
 * becomes that type's value, as Jenkins converts a submitted form or a remote trigger's value.
 */
class ParameterDefinition {
    static final List<String> TYPES = ['booleanParam', 'choice', 'password', 'string', 'text'].asImmutable()

    final String type
    final String name
    final Object defaultValue
    final List<String> choices

    ParameterDefinition(String type, Map settings) {
        this.type = type
        this.name = String.valueOf(settings.name)
        if (type == 'choice') {
            Object given = settings.choices
            choices = (given instanceof Collection ? (given as List) : String.valueOf(given ?: '').readLines()).collect { String.valueOf(it) }
            defaultValue = choices ? choices[0] : null
        } else if (type == 'booleanParam') {
            choices = null
            defaultValue = settings.defaultValue as boolean
        } else {
            choices = null
            defaultValue = settings.defaultValue == null ? '' : String.valueOf(settings.defaultValue)
        }
    }

    /** The value a build started with `given` has for this parameter. */
    Object valueOf(Object given) {
        if (type == 'booleanParam') {
            return given instanceof Boolean ? given : Boolean.parseBoolean(String.valueOf(given))
        }
        String text = String.valueOf(given)
        if (type == 'choice' && !(text in choices)) {
            throw new PipelineFailure("Illegal choice for parameter ${name}: ${text} (choices: ${choices.join(', ')})")
        }
        return text
    }

    /** For input: [name:, defaultValue:]. */
    Map<String, Object> asMap() {
        return [name: name, defaultValue: defaultValue, type: type]
    }
}
