// CodeNarc rules for the shared library's src/ and vars/ (gradle codenarcSharedLibrary, run by
// gradle test). Every rule set is on; the exclusions below are the rules that fight how Jenkins
// pipeline code has to be written, or this project's house style, each with its reason.
ruleset {
    ruleset('rulesets/basic.xml')
    ruleset('rulesets/braces.xml')
    ruleset('rulesets/concurrency.xml')
    ruleset('rulesets/convention.xml') {
        // Pipeline code is dynamic: the script object, step results and block values have no
        // static type (CpsScript is not on Maven Central), and CPS cannot run @CompileStatic code.
        exclude 'CompileStatic'
        exclude 'NoDef'
        exclude 'MethodReturnTypeRequired'
        exclude 'MethodParameterTypeRequired'
        exclude 'FieldTypeRequired'
        // Guard clauses that return early read better than nested ternaries.
        exclude 'IfStatementCouldBeTernary'
        // Methods follow the flow of a step (run, then what it calls), not visibility or static-ness.
        exclude 'StaticMethodsBeforeInstanceMethods'
        exclude 'PublicMethodsBeforeNonPublicMethods'
    }
    ruleset('rulesets/design.xml') {
        // Checking the types of a Jenkinsfile's option values is what a step must do.
        exclude 'Instanceof'
    }
    ruleset('rulesets/dry.xml') {
        // Tables of option names and request keys name the same words on purpose.
        exclude 'DuplicateStringLiteral'
    }
    ruleset('rulesets/exceptions.xml')
    ruleset('rulesets/formatting.xml') {
        exclude 'ClassStartsWithBlankLine'
        exclude 'ClassEndsWithBlankLine'
        LineLength {
            length = 140
        }
        // `key: value`, and aligned tables (`role      : 'purpose'`).
        SpaceAroundMapEntryColon {
            characterBeforeColonRegex = /./
            characterAfterColonRegex = /\s/
        }
    }
    ruleset('rulesets/groovyism.xml')
    ruleset('rulesets/imports.xml')
    ruleset('rulesets/logging.xml')
    ruleset('rulesets/naming.xml')
    ruleset('rulesets/security.xml')
    ruleset('rulesets/serialization.xml')
    ruleset('rulesets/size.xml') {
        // Needs a Cobertura coverage report, which this build does not make.
        exclude 'CrapMetric'
    }
    ruleset('rulesets/unnecessary.xml') {
        // House style: a method says what it returns.
        exclude 'UnnecessaryReturnKeyword'
        // Java APIs read as Java: System.getProperties(), FileSystems.getDefault().
        exclude 'UnnecessaryGetter'
        exclude 'UnnecessarySubstring'
    }
    ruleset('rulesets/unused.xml')
}
