package org.withawsrole.replay

/**
 * A Declarative `pipeline { }` block read into a model before anything runs, as Jenkins parses it
 * at compile time: sections are recorded by builder delegates (their closures are not run yet),
 * then checked; a wrong structure fails the build with Jenkins' words (pipeline-model-definition's
 * Messages.properties) and without running a step. What Jenkins offers and this runner does not is
 * refused by name ("... is not supported by the replay runner") rather than silently ignored.
 */
class DeclarativeModel {
    /** BuildCondition order in Jenkins (by extension ordinal): always first, cleanup last. */
    static final List<String> POST_CONDITIONS = ['always', 'changed', 'fixed', 'regression', 'aborted', 'success',
                                                 'unsuccessful', 'unstable', 'failure', 'notBuilt', 'cleanup'].asImmutable()
    static final List<String> WHEN_CONDITIONS = ['allOf', 'anyOf', 'branch', 'buildingTag', 'changeRequest', 'environment', 'equals',
                                                 'expression', 'not', 'tag', 'triggeredBy'].asImmutable()
    /** Options that wrap the pipeline or stage, in the order given (each a step of the same name). */
    static final List<String> WRAPPER_OPTIONS = ['ansiColor', 'lock', 'retry', 'timeout', 'timestamps'].asImmutable()
    /** Options Declarative itself acts on. */
    static final List<String> DECLARATIVE_OPTIONS = ['checkoutToSubdirectory', 'parallelsAlwaysFailFast', 'skipDefaultCheckout',
                                                     'skipStagesAfterUnstable'].asImmutable()
    /** Job properties: accepted, nothing to do in one replay (there is no job to keep builds of, no queue). */
    static final List<String> JOB_PROPERTY_OPTIONS = ['buildDiscarder', 'copyArtifactPermission', 'disableConcurrentBuilds',
                                                      'disableResume', 'durabilityHint', 'newContainerPerStage', 'overrideIndexTriggers',
                                                      'preserveStashes', 'quietPeriod', 'rateLimitBuilds'].asImmutable()
    static final List<String> OPTIONS = (WRAPPER_OPTIONS + DECLARATIVE_OPTIONS + JOB_PROPERTY_OPTIONS).sort().asImmutable()
    static final List<String> TRIGGERS = ['cron', 'githubPush', 'pollSCM', 'upstream', 'gitlab', 'bitbucketPush',
                                          'GenericTrigger', 'issueCommentTrigger', 'parameterizedCron'].asImmutable()
    static final List<String> AGENT_TYPES = ['any', 'docker', 'dockerfile', 'kubernetes', 'label', 'node', 'none'].asImmutable()

    static class Root {
        Agent agent
        Closure environment
        Options options
        Map<String, String> tools
        List<ParameterDefinition> parameters = []
        List<Stage> stages
        Map<String, Closure> post
    }

    static class Stage {
        String name
        Agent agent
        Closure environment
        Options options
        Map<String, String> tools
        Input input
        /** A matrix cell: its axis values (NAME -> value), set before anything else of the stage. */
        Map<String, String> cell
        When when
        Closure steps
        List<Stage> stages
        List<Stage> parallel
        boolean failFast
        Map<String, Closure> post
    }

    static class Agent {
        /** any, none, label, docker, ... */
        String type
        Object argument

        String describe() {
            return argument == null ? type : "${type} ${argument}".toString()
        }
    }

    static class Options {
        /** Wrapper options in the order given: name -> arguments (timeout, retry, timestamps, ...). */
        Map<String, Object> wrappers = new LinkedHashMap<String, Object>()
        /** Declarative's own options given: name -> arguments. */
        Map<String, Object> declarative = new LinkedHashMap<String, Object>()

        boolean isParallelsAlwaysFailFast() {
            return declarative.containsKey('parallelsAlwaysFailFast')
        }
    }

    /** A stage's `input { }`: the input step's arguments. */
    static class Input {
        Map<String, Object> settings = new LinkedHashMap<String, Object>()
        List<ParameterDefinition> parameters = []
    }

    static class When {
        Condition condition
        boolean beforeAgent
        boolean beforeOptions
        boolean beforeInput
    }

    static class Condition {
        String type
        Object argument
        Closure expression
        List<Condition> children = []
    }

    /** Thrown for a wrong structure; printed as Jenkins prints a Declarative compile error. */
    static class ValidationFailure extends PipelineFailure {
        final List<String> errors

        ValidationFailure(List<String> errors) {
            super('org.codehaus.groovy.control.MultipleCompilationErrorsException: startup failed:\n' +
                    errors.collect { "WorkflowScript: ${it}\n".toString() }.join('\n') +
                    "\n${errors.size()} error${errors.size() == 1 ? '' : 's'}")
            this.errors = errors
        }
    }

    final List<String> errors = []
    /** Every closure a builder ran, to point back at the script once the model is read. */
    private final List<Closure> builderClosures = []
    private final Set<String> stageNames = new HashSet<String>()

    static Root parse(Closure pipeline) {
        DeclarativeModel model = new DeclarativeModel()
        try {
            Root root = model.readRoot(pipeline)
            if (!model.errors.isEmpty()) {
                throw new ValidationFailure(model.errors)
            }
            return root
        } finally {
            // Closures inside (steps, post, ...) resolve through their owners; those must not reach a builder.
            model.builderClosures.each { it.resolveStrategy = Closure.OWNER_ONLY }
        }
    }

    void readWith(Closure closure, Object builder) {
        builderClosures << closure
        closure.delegate = builder
        closure.resolveStrategy = Closure.DELEGATE_ONLY
        closure.call()
    }

    Root readRoot(Closure pipeline) {
        Root root = new Root()
        Set<String> seen = new HashSet<String>()
        readWith(pipeline, new DeclarativeSection(this, 'pipeline', { String name, Object[] args ->
                if (!seen.add(name) && name in ['agent', 'environment', 'options', 'parameters', 'stages', 'post', 'tools', 'triggers']) {
                    errors << "Multiple occurrences of the ${name} section".toString()
                }
                switch (name) {
                    case 'agent': root.agent = readAgent(args); break
                    case 'environment': root.environment = block(name, args); break
                    case 'options': root.options = readOptions(block(name, args)); break
                    case 'parameters': root.parameters = readParameters(block(name, args)); break
                    case 'stages': root.stages = readStages(block(name, args), false); break
                    case 'post': root.post = readPost(block(name, args)); break
                    case 'tools': root.tools = readTools(block(name, args)); break
                    case 'triggers': readTriggers(block(name, args)); break
                    case 'libraries':
                        errors << "The ${name} section is not supported by the replay runner".toString(); break
                    default: errors << "Undefined section \"${name}\"".toString()
                }
                return null
            }))
        if (root.agent == null) {
            errors << 'Missing required section "agent"'
        }
        if (root.stages == null) {
            errors << 'Missing required section "stages"'
        }
        return root
    }

    Closure block(String name, Object[] args) {
        if (args.length == 1 && args[0] instanceof Closure) {
            return (Closure) args[0]
        }
        errors << "Expected a block for ${name}".toString()
        return null
    }

    Agent readAgent(Object[] args) {
        if (args.length != 1) {
            errors << 'Expected an agent'
            return null
        }
        Object value = args[0]
        if (value instanceof DeclarativeSection.Bare && ((DeclarativeSection.Bare) value).name in ['any', 'none']) {
            return new Agent(type: ((DeclarativeSection.Bare) value).name)
        }
        if (value instanceof Closure) {
            List<Agent> found = []
            readWith((Closure) value, new DeclarativeSection(this, 'agent', { String name, Object[] typeArgs ->
                    if (!(name in AGENT_TYPES) || name in ['any', 'none']) {
                        errors << "Invalid agent type \"${name}\" specified. Must be one of ${AGENT_TYPES}".toString()
                    }
                    Object argument = typeArgs.length == 0 ? null : typeArgs[0]
                    if (argument instanceof Closure) {
                        Map<String, Object> settings = new LinkedHashMap<String, Object>()
                        readWith((Closure) argument, new DeclarativeSection(this, name, { String key, Object[] keyArgs ->
                                settings[key] = keyArgs.length == 1 ? keyArgs[0] : keyArgs.toList()
                                return null
                            }))
                        argument = settings
                    }
                    found << new Agent(type: name, argument: argument)
                    return null
                }))
            if (found.size() != 1) {
                errors << (found.isEmpty() ? 'No agent type specified. Must be one of ' + AGENT_TYPES : 'Only one agent type is allowed per agent section')
                return null
            }
            return found[0]
        }
        errors << 'Only "agent none", "agent any" or "agent {...}" are allowed.'
        return null
    }

    Options readOptions(Closure closure) {
        Options options = new Options()
        if (closure == null) {
            return options
        }
        Set<String> seen = new HashSet<String>()
        readWith(closure, new DeclarativeSection(this, 'options', { String name, Object[] args ->
                if (name == 'logRotator') {
                    return [logRotator: args.toList()] // buildDiscarder(logRotator(...))'s argument
                }
                if (!(name in OPTIONS)) {
                    errors << "Invalid option type \"${name}\". Valid option types: ${OPTIONS}".toString()
                } else if (!seen.add(name)) {
                    errors << "Duplicate option name: \"${name}\"".toString()
                } else if (name == 'timeout') {
                    options.wrappers.timeout = args.length == 1 && args[0] instanceof Map ? args[0] : [time: args[0], unit: 'MINUTES']
                } else if (name == 'retry') {
                    options.wrappers.retry = args.length == 1 && args[0] instanceof Map ? args[0] : [count: args.length ? args[0] : null]
                } else if (name in WRAPPER_OPTIONS) {
                    options.wrappers[name] = args.length == 0 ? null : args[0]
                } else if (name in DECLARATIVE_OPTIONS) {
                    options.declarative[name] = args.length == 0 ? true : args[0]
                }
                return null
            }))
        return options
    }

    /** tools { maven 'M3'; jdk 'temurin-17' }: tool type -> installation name. */
    Map<String, String> readTools(Closure closure) {
        Map<String, String> tools = new LinkedHashMap<String, String>()
        if (closure != null) {
            readWith(closure, new DeclarativeSection(this, 'tools', { String type, Object[] args ->
                    if (args.length != 1 || args[0] instanceof Closure) {
                        errors << "Expected a tool installation name for ${type}".toString()
                    } else {
                        tools[type] = String.valueOf(args[0])
                    }
                    return null
                }))
        }
        return tools
    }

    /** triggers { cron('H 4 * * *') }: checked, then accepted; a replay is one build started by hand. */
    void readTriggers(Closure closure) {
        if (closure == null) {
            return
        }
        readWith(closure, new DeclarativeSection(this, 'triggers', { String type, Object[] args ->
                if (!(type in TRIGGERS)) {
                    errors << "Invalid trigger type \"${type}\". Valid trigger types: ${TRIGGERS}".toString()
                }
                return null
            }))
    }

    /** input { message '...'; ok '...'; submitter '...'; parameters { ... } } in a stage. */
    Input readInput(Closure closure) {
        Input input = new Input()
        if (closure == null) {
            return input
        }
        readWith(closure, new DeclarativeSection(this, 'input', { String key, Object[] args ->
                if (key == 'parameters') {
                    input.parameters = readParameters(block(key, args))
                } else if (key in ['message', 'id', 'ok', 'submitter', 'submitterParameter']) {
                    input.settings[key] = args.length == 1 ? args[0] : null
                } else {
                    errors << "Invalid input directive entry \"${key}\"".toString()
                }
                return null
            }))
        if (input.settings.message == null) {
            errors << 'Missing required parameter: "message"'
        }
        return input
    }

    List<ParameterDefinition> readParameters(Closure closure) {
        List<ParameterDefinition> parameters = []
        if (closure == null) {
            return parameters
        }
        readWith(closure, new DeclarativeSection(this, 'parameters', { String type, Object[] args ->
                Map settings = args.length == 1 && args[0] instanceof Map ? (Map) args[0] : null
                if (!(type in ParameterDefinition.TYPES)) {
                    errors << "Invalid build parameter type \"${type}\". Valid build parameter types: ${ParameterDefinition.TYPES}".toString()
                } else if (settings?.name == null) {
                    errors << "Missing required parameter: \"name\"".toString()
                } else {
                    parameters << new ParameterDefinition(type, settings)
                }
                return null
            }))
        return parameters
    }

    List<Stage> readStages(Closure closure, boolean inParallel) {
        List<Stage> stages = []
        if (closure == null) {
            return stages
        }
        readWith(closure, new DeclarativeSection(this, 'stages', { String name, Object[] args ->
                if (name == 'stage' && args.length == 2 && args[1] instanceof Closure) {
                    stages << readStage(String.valueOf(args[0]), (Closure) args[1], inParallel)
                } else if (name == 'stage') {
                    errors << (args.length == 1 && args[0] instanceof Closure ? 'Stage does not have a name' : 'Stage does not have a block')
                } else {
                    errors << 'Expected a stage'
                }
                return null
            }))
        if (stages.isEmpty()) {
            errors << 'No stages specified'
        }
        return stages
    }

    Stage readStage(String name, Closure closure, boolean inParallel) {
        Stage stage = new Stage(name: name)
        if (!stageNames.add(name)) {
            errors << "Duplicate stage name: \"${name}\"".toString()
        }
        Set<String> seen = new HashSet<String>()
        readWith(closure, new DeclarativeSection(this, "stage ${name}", { String section, Object[] args ->
                if (!seen.add(section)) {
                    errors << "Multiple occurrences of the ${section} section".toString()
                }
                switch (section) {
                    case 'steps': stage.steps = block(section, args); break
                    case 'agent': stage.agent = readAgent(args); break
                    case 'environment': stage.environment = block(section, args); break
                    case 'options': stage.options = readOptions(block(section, args)); break
                    case 'when': stage.when = readWhen(block(section, args)); break
                    case 'post': stage.post = readPost(block(section, args)); break
                    case 'stages': stage.stages = readStages(block(section, args), inParallel); break
                    case 'parallel':
                        if (inParallel) {
                            errors << '"matrix" or "parallel" cannot be nested inside another "matrix" or "parallel".'
                        }
                        stage.parallel = readStages(block(section, args), true)
                        break
                    case 'failFast': stage.failFast = args.length == 1 && args[0] as boolean; break
                    case 'tools': stage.tools = readTools(block(section, args)); break
                    case 'input': stage.input = readInput(block(section, args)); break
                    case 'matrix':
                        if (inParallel) {
                            errors << '"matrix" or "parallel" cannot be nested inside another "matrix" or "parallel".'
                        }
                        stage.parallel = readMatrix(name, block(section, args))
                        break
                    default:
                        errors << ("Unknown stage section \"${section}\". Starting with version 0.5, steps in a stage " +
                                'must be in a \u2018steps\u2019 block.').toString()
                }
                return null
            }))
        int kinds = [stage.steps, stage.stages, stage.parallel].count { it != null }
        if (kinds == 0) {
            errors << "Expected one of \"steps\", \"stages\", or \"parallel\" for stage \"${name}\"".toString()
        } else if (kinds > 1) {
            errors << "Only one of \"matrix\", \"parallel\", \"stages\", or \"steps\" allowed for stage \"${name}\"".toString()
        }
        if (stage.parallel != null && stage.agent != null) {
            errors << "\"agent\" is not allowed in stage \"${name}\" as it contains parallel or matrix stages".toString()
        }
        return stage
    }

    When readWhen(Closure closure) {
        if (closure == null) {
            return null
        }
        When when = new When()
        List<Condition> conditions = readConditions(closure, when)
        if (conditions.isEmpty()) {
            errors << 'Empty when closure, remove the property or add some content.'
        } else if (conditions.size() > 1) {
            // Jenkins combines several top-level conditions with allOf.
            when.condition = new Condition(type: 'allOf', children: conditions)
        } else {
            when.condition = conditions[0]
        }
        return when
    }

    List<Condition> readConditions(Closure closure, When when) {
        List<Condition> conditions = []
        readWith(closure, new DeclarativeSection(this, 'when', { String type, Object[] args ->
                if (when != null && type in ['beforeAgent', 'beforeOptions', 'beforeInput']) {
                    when[type] = args.length == 1 && args[0] as boolean
                    return null
                }
                if (!(type in WHEN_CONDITIONS)) {
                    errors << "Unknown conditional ${type}. Valid conditionals are: ${WHEN_CONDITIONS.join(', ')}".toString()
                    return null
                }
                Condition condition = new Condition(type: type)
                if (type in ['not', 'allOf', 'anyOf']) {
                    condition.children = args.length == 1 && args[0] instanceof Closure ? readConditions((Closure) args[0], null) : []
                    if (type == 'not' && condition.children.size() != 1) {
                        errors << 'Nested when condition "not" requires exactly 1 child condition(s).'
                    } else if (condition.children.isEmpty()) {
                        errors << "Nested when condition \"${type}\" requires at least one child condition.".toString()
                    }
                } else if (type == 'expression') {
                    condition.expression = block(type, args)
                } else if (type in ['buildingTag', 'changeRequest', 'triggeredBy']) {
                    condition.argument = args.length == 1 ? args[0] : null
                } else {
                    condition.argument = args.length == 1 ? args[0] : null
                    if (condition.argument == null) {
                        errors << "Missing required parameter for when condition \"${type}\"".toString()
                    }
                }
                conditions << condition
                return null
            }))
        return conditions
    }

    Map<String, Closure> readPost(Closure closure) {
        Map<String, Closure> post = new LinkedHashMap<String, Closure>()
        if (closure == null) {
            return post
        }
        readWith(closure, new DeclarativeSection(this, 'post', { String condition, Object[] args ->
                if (!(condition in POST_CONDITIONS)) {
                    errors << "Invalid condition \"${condition}\" - valid conditions are ${POST_CONDITIONS}".toString()
                } else if (post.containsKey(condition)) {
                    errors << "Duplicate build condition name: \"${condition}\"".toString()
                } else {
                    Closure body = block(condition, args)
                    if (body != null) {
                        post[condition] = body
                    }
                }
                return null
            }))
        if (post.isEmpty()) {
            errors << 'post can not be empty'
        }
        return post
    }

    /**
     * matrix { axes { axis { name 'X'; values 'a', 'b' } }; excludes { exclude { axis { ... } } }; stages { } ... }:
     * one parallel branch per combination of the axes' values (the first axis varies fastest, as
     * Jenkins expands them), each named "Matrix - X = 'a', Y = 'c'", with the axes as environment
     * variables and the matrix's agent, environment, when, options, tools, input, post and stages.
     */
    List<Stage> readMatrix(String stageName, Closure closure) {
        List<Map<String, Object>> axes = []
        List<List<Map<String, Object>>> excludes = []
        Stage template = new Stage(name: stageName)
        if (closure == null) {
            return []
        }
        readWith(closure, new DeclarativeSection(this, 'matrix', { String section, Object[] args ->
                switch (section) {
                    case 'axes': axes.addAll(readAxes(block(section, args), 'axes')); break
                    case 'excludes':
                        readWith(block(section, args), new DeclarativeSection(this, 'excludes', { String exclude, Object[] excludeArgs ->
                                excludes << readAxes(block(exclude, excludeArgs), 'exclude')
                                return null
                            }))
                        break
                    case 'agent': template.agent = readAgent(args); break
                    case 'environment': template.environment = block(section, args); break
                    case 'options': template.options = readOptions(block(section, args)); break
                    case 'when': template.when = readWhen(block(section, args)); break
                    case 'post': template.post = readPost(block(section, args)); break
                    case 'tools': template.tools = readTools(block(section, args)); break
                    case 'input': template.input = readInput(block(section, args)); break
                    case 'stages':
                        Set<String> outerNames = new HashSet<String>(stageNames)
                        template.stages = readStages(block(section, args), true)
                        stageNames.clear()
                        stageNames.addAll(outerNames) // every cell runs these stages under the same names
                        break
                    default: errors << "Invalid matrix section \"${section}\"".toString()
                }
                return null
            }))
        if (axes.isEmpty()) {
            errors << "Matrix in stage \"${stageName}\" must have at least one axis"
        }
        if (template.stages == null) {
            errors << "Matrix in stage \"${stageName}\" must have a stages section"
        }
        List<Map<String, String>> cells = [[:]]
        axes.each { Map<String, Object> axis ->
            List<Map<String, String>> next = []
            ((List<String>) axis.values).each { String value ->
                cells.each { Map<String, String> cell -> next << (cell + [(String.valueOf(axis.name)): value]) }
            }
            cells = next
        }
        excludes.each { List<Map<String, Object>> exclude ->
            cells.removeAll { Map<String, String> cell ->
                exclude.every { Map<String, Object> axis ->
                    boolean listed = cell[String.valueOf(axis.name)] in (List<String>) axis.values
                    axis.inverse ? !listed : listed
                }
            }
        }
        return cells.collect { Map<String, String> cell ->
            new Stage(name: 'Matrix - ' + cell.collect { k, v -> "${k} = '${v}'" }.join(', '), cell: cell, agent: template.agent,
                    environment: template.environment, options: template.options, when: template.when, post: template.post,
                    tools: template.tools, input: template.input, stages: template.stages)
        }
    }

    private List<Map<String, Object>> readAxes(Closure closure, String where) {
        List<Map<String, Object>> axes = []
        if (closure == null) {
            return axes
        }
        readWith(closure, new DeclarativeSection(this, where, { String entry, Object[] args ->
                if (entry != 'axis') {
                    errors << "Expected an axis in ${where}, got \"${entry}\"".toString()
                    return null
                }
                Map<String, Object> axis = [values: []]
                readWith(block(entry, args), new DeclarativeSection(this, 'axis', { String key, Object[] keyArgs ->
                        if (key == 'name') {
                            axis.name = String.valueOf(keyArgs[0])
                        } else if (key in ['values', 'notValues']) {
                            axis.values = keyArgs.collect { String.valueOf(it) }
                            axis.inverse = key == 'notValues'
                        } else {
                            errors << "Invalid axis entry \"${key}\"".toString()
                        }
                        return null
                    }))
                if (axis.name == null) {
                    errors << 'Missing required parameter: "name"'
                }
                axes << axis
                return null
            }))
        return axes
    }
}
