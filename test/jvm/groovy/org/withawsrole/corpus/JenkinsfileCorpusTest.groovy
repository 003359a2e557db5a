package org.withawsrole.corpus

import org.junit.Before
import org.junit.BeforeClass
import org.junit.ClassRule
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import org.junit.rules.TestName
import org.withawsrole.WorldTestBase
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner
import org.withawsrole.replay.ReplayInput
import org.withawsrole.replay.ScmSource

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows

/**
 * The Jenkinsfiles of test/jenkinsfiles/, written the way teams write them, each run by the replay
 * runner against the world and checked against what Jenkins does with it: the stages in order
 * (skipped ones included, as Jenkins shows them), the post sections that run, the result, how the
 * environment is scoped, and withAwsRole's one log line per block. The job's SCM is a small git
 * repository (checkout scm and Declarative's implicit checkout copy it); each test is a job of its own.
 */
class JenkinsfileCorpusTest extends WorldTestBase {
    static final String ACCOUNT = '123456789012'

    @ClassRule
    public static TemporaryFolder shared = new TemporaryFolder()

    @Rule
    public TestName test = new TestName()

    static File repository
    PipelineRunner runner
    File dockerCalls

    @BeforeClass
    static void world() {
        repository = shared.newFolder('shop-api')
        new File(repository, 'Dockerfile').text = 'FROM scratch\n'
        new File(repository, 'main.tf').text = 'resource "aws_s3_bucket" "shop" {}\n'
        ['init -q', 'add .', '-c user.name=dev -c user.email=dev@example.com commit -q -m first'].each { String arguments ->
            Process git = (['git'] + arguments.split(' ').toList()).execute(null, repository)
            assertEquals("git ${arguments}: ${git.errorStream.text}", 0, git.waitFor())
        }
    }

    @Before
    void runner() {
        runner = PipelineRunner.forThisProject()
        runner.jobName = "corpus/${test.methodName.replace('_', '-')}"
        runner.scm = ScmSource.ofWorkingTree(repository)
        File bin = new File(runner.libraryDirectory, 'test/jvm/fixtures/bin')
        // docker (and terraform, also reached through `tools`) stand in for the real ones.
        runner.baseEnvironment.PATH = "${bin.absolutePath}:${runner.baseEnvironment.PATH}".toString()
        dockerCalls = new File(shared.root, "docker-calls-${test.methodName}")
        runner.baseEnvironment.FAKE_DOCKER_RECORD = dockerCalls.absolutePath
        runner.baseEnvironment.DOCKER_CONFIG = new File(shared.root, "docker-${test.methodName}").absolutePath
    }

    /** test/jenkinsfiles/<name>.Jenkinsfile, run; it must end with `result`. */
    BuildResult run(String name, String result) {
        BuildResult build = runner.run(new File(runner.libraryDirectory, "test/jenkinsfiles/${name}.Jenkinsfile"))
        assertEquals(build.log, result, build.result)
        return build
    }

    /** withAwsRole's one line per block: purpose, assumed role, expiry, cache. */
    static int awsRoleLines(BuildResult build, String purpose) {
        return (build.log =~ /(?m)^(\[[^\]]+\] )?withAwsRole: ${purpose} as arn:aws:sts::${ACCOUNT}:assumed-role\/jenkins-${purpose}-role\/\S+, expires \S+ \(cache (hit|miss)\)$/).count
    }

    static void assertInOrder(String log, List<String> lines) {
        int from = 0
        lines.each { String line ->
            int at = log.indexOf(line, from)
            assertTrue("'${line}' after position ${from} in:\n${log}", at >= 0)
            from = at + line.length()
        }
    }

    @Test
    void ecr_push_builds_pushes_and_cleans_up() {
        BuildResult build = run('ecr-push', 'SUCCESS')
        assertEquals(['Declarative: Checkout SCM', 'Build', 'Push', 'Declarative: Post Actions'], build.stages)
        assertEquals(build.log, 1, awsRoleLines(build, 'ecr-push'))
        String calls = dockerCalls.text
        assertTrue(calls, calls.contains("docker build -t ${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop-api:${build.number} ."))
        assertTrue(calls, calls.contains("login registry=${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com user=AWS"))
        assertTrue(calls, calls.contains("docker push ${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop-api:${build.number}"))
        // Jenkins' order of post conditions: always before success, cleanup last.
        assertInOrder(build.log, ['docker image rm', "pushed ${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop-api:${build.number}",
                                  '[WS-CLEANUP] Deleting project workspace...'])
        assertEquals('every agent is this machine, said once', 1, build.log.count('every agent runs on this machine'))
    }

    @Test
    void terraform_keeps_one_set_of_credentials_for_the_whole_block() {
        runner.parameters.ACTION = 'apply'
        BuildResult without = run('terraform-long-block', 'FAILURE')
        assertTrue(without.log, without.log.contains('No terraform named terraform-1.7 found; give the replay its home: ' +
                'REPLAY_TOOLS=terraform-1.7=/path/to/its/home'))

        runner.tools['terraform-1.7'] = new File(runner.libraryDirectory, 'test/jvm/fixtures') // its bin/ has the stand-in
        BuildResult build = run('terraform-long-block', 'SUCCESS')
        assertEquals(build.log, 1, awsRoleLines(build, 'deploy'))
        List<String> callers = (build.log.readLines().findAll { it.contains('assumed-role/jenkins-deploy-role') && !it.startsWith('withAwsRole') }
                .collect { (it =~ /arn:aws:sts::[^ )]+/)[0] })
        assertEquals(build.log, 2, callers.size()) // plan and apply asked STS who they are
        assertEquals('the same session from init to apply', 1, callers.toSet().size())
        assertLogShows(build, 'Apply complete!')
        assertEquals(['tfplan'], build.artifacts)
    }

    @Test
    void multi_region_deploys_in_parallel_with_each_region_s_credentials() {
        BuildResult build = run('multi-region-parallel', 'SUCCESS')
        assertEquals(build.log, 3, awsRoleLines(build, 'deploy'))
        ['eu-west-1', 'us-east-1', 'ap-southeast-2'].each { String region ->
            assertLogShows(build, "[${region}] deploying to ${region} as arn:aws:sts::${ACCOUNT}:assumed-role/jenkins-deploy-role/",
                    "[Pipeline] { (Branch: ${region})")
        }
        assertEquals('Deploy', build.stages[0])
        assertLogShows(build, 'all regions deployed')
    }

    @Test
    void multibranch_deploys_from_main_only() {
        runner.branchName = 'feature/cart'
        BuildResult feature = run('multibranch-when-branch', 'SUCCESS')
        assertLogShows(feature, 'Stage "Deploy" skipped due to when conditional',
                'Stage "Release" skipped due to when conditional',
                'preview for feature/cart')
        assertEquals(feature.log, 0, awsRoleLines(feature, 'deploy'))

        runner.branchName = 'main'
        BuildResult main = run('multibranch-when-branch', 'SUCCESS')
        assertEquals(main.log, 1, awsRoleLines(main, 'deploy'))
        assertLogShows(main, 'Stage "Preview" skipped due to when conditional')
        assertEquals(['Declarative: Checkout SCM', 'Test', 'Deploy', 'Release', 'Preview'], main.stages)
    }

    @Test
    void a_failed_stage_runs_post_in_jenkins_order_and_fails_the_build() {
        BuildResult build = run('post-cleanup', 'FAILURE')
        assertLogShows(build, 'Stage "Publish" skipped due to earlier failure(s)')
        assertLogLacks(build, 'never published')
        assertInOrder(build.log, ['stage post: always', 'stage post: failure', 'post: always', 'post: unsuccessful',
                                  'post: failure (currentBuild.result=FAILURE)', 'post: cleanup', 'ERROR: script returned exit code 3',
                                  'Finished: FAILURE'])
        assertLogLacks(build, 'post: success')
    }

    @Test
    void a_consumer_library_gets_credentials_through_withAwsRole() {
        runner.withLibrary('acme-pipeline', new File(runner.libraryDirectory, 'test/jvm/fixtures/acme-pipeline'))
        BuildResult build = run('consumer-library', 'SUCCESS')
        assertEquals(build.log, 1, awsRoleLines(build, 'ecr-push'))
        assertEquals(build.log, 1, awsRoleLines(build, 'deploy'))
        assertTrue(dockerCalls.text, dockerCalls.text.contains("docker push ${ACCOUNT}.dkr.ecr.eu-west-1.amazonaws.com/shop-api:${build.number}"))
        assertLogShows(build, 'description: deployed as jenkins-deploy-role')
    }

    @Test
    void scripted_pipeline_checks_out_deploys_and_ends_unstable() {
        BuildResult build = run('scripted-node', 'UNSTABLE')
        assertEquals(['Checkout', 'Build', 'Deploy', 'Smoke test'], build.stages)
        String head = ['git', 'rev-parse', '--short', 'HEAD'].execute(null, repository).text.trim()
        assertLogShows(build, "building ${head} in ", "deployed as arn:aws:sts::${ACCOUNT}:assumed-role/jenkins-deploy-role/")
        assertEquals(build.log, 1, awsRoleLines(build, 'deploy'))
        assertLogShows(build, 'finally: UNSTABLE')
    }

    @Test
    void matrix_runs_every_cell_but_the_excluded_one() {
        BuildResult build = run('matrix', 'SUCCESS')
        ["PLATFORM = 'linux', REGION = 'eu-west-1'", "PLATFORM = 'windows', REGION = 'eu-west-1'",
         "PLATFORM = 'linux', REGION = 'us-east-1'"].each { String cell ->
            assertLogShows(build, "[Pipeline] { (Branch: Matrix - ${cell})")
        }
        assertLogLacks(build, "PLATFORM = 'windows', REGION = 'us-east-1'")
        ['cell: linux eu-west-1', 'cell: windows eu-west-1', 'cell: linux us-east-1'].each { assertTrue(build.log, build.log.contains(it)) }
        assertEquals(build.log, 3, build.stages.count('Test'))
    }

    @Test
    void environment_is_scoped_and_bare_names_resolve_like_jenkins() {
        runner.parameters.TARGET = 'production'
        BuildResult build = run('env-scoping', 'SUCCESS')
        assertLogShows(build, "bare: ${build.number} ${runner.jobName} shop-api-${build.number} production inside")
        assertTrue(build.log, (build.log =~ /sh: shop-api-${build.number} production inside \/\S+/).find())
        assertLogShows(build, 'withEnv: yes', 'after withEnv: null')
        String head = ['git', 'rev-parse', '--short', 'HEAD'].execute(null, repository).text.trim()
        assertLogShows(build, "later: null first stage shop-api-${build.number} ${head}")
        String workspace = (build.log =~ /workspace is (\S+)/)[0][1]
        assertFalse('a fresh workspace, never the checkout', workspace.startsWith(runner.libraryDirectory.absolutePath))
        assertFalse('removed after the build', new File(workspace).exists())
    }

    @Test
    void input_proceeds_with_its_defaults_or_aborts() {
        BuildResult approved = run('input-approval', 'SUCCESS')
        assertInOrder(approved.log, ['Deploy to production?', 'Deploy or Abort', 'deploying under CHG-0000', 'post: success'])
        assertEquals(approved.log, 1, awsRoleLines(approved, 'deploy'))

        runner.inputAnswer = ReplayInput.ABORT
        BuildResult rejected = run('input-approval', 'ABORTED')
        assertLogLacks(rejected, 'deploying under')
        assertLogShows(rejected, 'post: aborted')
        assertEquals(rejected.log, 0, awsRoleLines(rejected, 'deploy'))
    }

    @Test
    void failed_tests_make_the_build_unstable_and_skip_later_stages() {
        BuildResult build = run('junit-unstable', 'UNSTABLE')
        assertEquals([[file: 'reports/TEST-shop.xml', tests: 3, failures: 1, errors: 0, skipped: 1]], build.testReports)
        assertEquals(['dist/app.tar.gz'], build.artifacts)
        assertLogShows(build, 'Stage "Deploy" skipped due to earlier stage(s) marking the build as unstable', 'post: unstable')
        assertLogLacks(build, 'post: failure')
    }

    @Test
    void stash_carries_files_between_agents() {
        BuildResult build = run('stash-across-agents', 'SUCCESS')
        assertLogShows(build, 'Stashed 2 file(s)', 'app: jar bytes, dep: dep bytes', 'notes stashed: false')
    }

    @Test
    void retry_wait_until_and_catch_error_keep_going() {
        BuildResult build = run('retry-catch-error', 'UNSTABLE')
        assertEquals(build.log, 2, build.log.count('Retrying'))
        assertLogShows(build, 'ERROR: script returned exit code 2', 'attempts: 3, polls: 2')
    }

    @Test
    void changed_fixed_and_regression_follow_the_previous_build() {
        BuildResult first = run('changed-fixed', 'SUCCESS')
        assertTrue('the first build has changed', first.log.contains('post: changed'))

        runner.parameters.BREAK_IT = true
        BuildResult broken = run('changed-fixed', 'FAILURE')
        assertLogShows(broken, 'post: changed', 'post: regression')
        assertLogLacks(broken, 'post: fixed')

        runner.parameters.BREAK_IT = false
        BuildResult fixed = run('changed-fixed', 'SUCCESS')
        assertLogShows(fixed, 'post: fixed', 'post: changed')

        BuildResult same = run('changed-fixed', 'SUCCESS')
        assertFalse(same.log, (same.log =~ /post: (changed|fixed|regression)/).find())
    }

    @Test
    void steps_the_runner_lacks_say_how_to_stand_them_in() {
        BuildResult missing = run('plugin-steps', 'FAILURE')
        assertLogShows(missing, "java.lang.NoSuchMethodError: No such DSL method 'sshagent' found among steps",
                "Stand it in: REPLAY_STUB_STEPS=sshagent")
        assertFalse('no stack trace', (missing.log =~ /\n\s+at [a-z]/).find())

        runner.standIns.noOps << 'sshagent'
        runner.standIns.file = new File(runner.libraryDirectory, 'test/jenkinsfiles/plugin-steps.stand-ins.groovy')
        BuildResult stoodIn = run('plugin-steps', 'SUCCESS')
        assertLogShows(stoodIn, '[replay] sshagent: stood in, did nothing', 'rsync to the web hosts', 'slack #deploys: Deploy SUCCESS')
    }

    @Test
    void scripted_properties_give_params_defaults_and_tools_their_homes() {
        BuildResult without = run('scripted-properties', 'FAILURE')
        assertLogShows(without, 'REPLAY_TOOLS=temurin-17=/path/to/its/home')

        runner.tools['temurin-17'] = new File('/opt/temurin-17')
        BuildResult build = run('scripted-properties', 'SUCCESS')
        assertLogShows(build, 'java home: /opt/temurin-17', "name: #${build.number} v1.0.0, publish: false, unix: true")
    }

    @Test
    void wrong_structure_fails_in_jenkins_words_before_any_step() {
        BuildResult build = run('wrong-structure', 'FAILURE')
        assertLogShows(build, 'WorkflowScript: Unknown stage section "sh".', 'WorkflowScript: Invalid condition "allways"')
        assertLogLacks(build, '[Pipeline] sh', 'Checkout SCM')
    }
}
