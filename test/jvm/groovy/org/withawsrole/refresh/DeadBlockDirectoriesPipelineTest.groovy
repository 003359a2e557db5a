package org.withawsrole.refresh

import org.junit.After
import org.junit.Test
import org.withawsrole.PipelineTestBase
import org.withawsrole.replay.BuildResult

import java.util.regex.Matcher

import static org.junit.Assert.*

/**
 * A build that cannot resume runs no finally, so its refresh: true block leaves its private folder
 * (the CLI, the AWS config, token files, cached STS credentials) in the workspace's @tmp. The folder
 * is named with the block's end (withawsrole-until-<epoch>-<random>), and the next refresh: true
 * block on that agent deletes the ones that ended over an hour ago by the agent's clock, and
 * nothing else: not a live block's, not one that ended within the hour (the agent's clock may
 * differ from Vault's), not a folder of another kind (docs/refresh.md, "After a controller restart").
 * A roles: block's folder and ecrLogin's DOCKER_CONFIG are named and swept the same way
 * (PrivateDirectories), with the end of their keys and of ECR's 12-hour login.
 */
class DeadBlockDirectoriesPipelineTest extends PipelineTestBase {
    File temporaryFiles

    @After
    void removeTemporaryFiles() {
        temporaryFiles?.deleteDir()
    }

    /** A folder in the workspace's @tmp holding what a block leaves (files made up, no secret). */
    File planted(String name) {
        File folder = new File(temporaryFiles, name)
        assertTrue(folder.mkdirs())
        ['awsrole', 'config', 'cache-ecr-push.json'].each { new File(folder, it).text = 'left behind' }
        return folder
    }

    @Test
    void a_refresh_block_deletes_the_folders_of_dead_blocks_and_no_other() {
        temporaryFiles = new File(workspace.root.parentFile, workspace.root.name + '@tmp')
        long now = (long) (System.currentTimeMillis() / 1000)
        File dead = planted("withawsrole-until-${now - 7200}-deadbeef")
        File justEnded = planted("withawsrole-until-${now - 60}-0ended00")
        File live = planted("withawsrole-until-${now + 3600}-live0000")
        File oldStyle = planted('withawsrole-1a2b3c4d')
        File numbered = planted('withawsrole-12345678')
        File unrelated = planted('withawsrole-until-not-a-time')
        // A Jenkinsfile's trap: a dead-looking name that links to a folder outside @tmp. Only the link goes.
        File outside = new File(workspace.root, 'outside-tmp')
        assertTrue(outside.mkdirs())
        new File(outside, 'config').text = 'not the library\'s'
        java.nio.file.Files.createSymbolicLink(new File(temporaryFiles, "withawsrole-until-${now - 7200}-link0000").toPath(), outside.toPath())
        BuildResult build = runner.run('''
            withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') {
                sh 'set +x; printf %s "$WITHAWSROLE_CLI" > block-cli; aws sts get-caller-identity --query Arn --output text'
            }
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, (build.log =~ /(?m)^arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\//).find())
        assertFalse('the dead block\'s folder is gone', dead.exists())
        assertFalse('the dead-looking link is gone', new File(temporaryFiles, "withawsrole-until-${now - 7200}-link0000").exists())
        [justEnded, live, oldStyle, numbered, unrelated, outside].each { File kept ->
            assertTrue("${kept.name} is kept".toString(), new File(kept, 'config').isFile())
        }
        // The block's own folder is named with its end: when its token (10 minutes) ends; it is gone after the block.
        String cli = workspaceFile('block-cli')
        Matcher named = cli =~ /\/withawsrole-until-(\d+)-[0-9a-f]{8}\/awsrole$/
        assertTrue(cli, named.find())
        long ends = Long.parseLong(named.group(1))
        assertTrue("${ends} vs now ${now}".toString(), ends >= now + 590 && ends <= now + 1000)
        assertFalse(cli, new File(cli).parentFile.exists())
    }

    @Test
    void a_roles_block_and_an_ecr_login_block_name_their_folder_with_its_end_and_delete_dead_ones_too() {
        temporaryFiles = new File(workspace.root.parentFile, workspace.root.name + '@tmp')
        withFakeDocker(runner, new File(workspace.root, 'docker-calls'))
        long now = (long) (System.currentTimeMillis() / 1000)
        // Each block's folder, and when it is dead: when the last role's keys expire (deploy's 30 minutes,
        // not ecr-push's 15: the block may still use deploy's profile), ECR's 12-hour login.
        Map<String, List<Object>> blocks = [
                'roles: block': ["withAwsRole(roles: ['ecr-push', 'deploy']) { sh 'set +x; printf %s \"\$AWS_CONFIG_FILE\" > folder' }",
                                 now + 1500, now + 2400],
                'ecrLogin block': ["ecrLogin(registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', role: 'ecr-push') { " +
                                           "sh 'set +x; printf %s/ \"\$DOCKER_CONFIG\" > folder' }",
                                   now + 12 * 3600 - 60, now + 12 * 3600 + 600],
        ]
        blocks.each { String kind, List<Object> block ->
            File dead = planted("withawsrole-until-${now - 7200}-deadbeef")
            File live = planted("withawsrole-until-${now + 3600}-live0000")
            BuildResult build = runner.run((String) block[0])
            assertTrue("${kind}\n${build.log}".toString(), build.success)
            assertFalse("${kind}: the dead block's folder is gone".toString(), dead.exists())
            assertTrue("${kind}: the live block's folder is kept".toString(), new File(live, 'config').isFile())
            Matcher named = workspaceFile('folder') =~ /\/withawsrole-until-(\d+)-[0-9a-f]{8}\//
            assertTrue("${kind}: ${workspaceFile('folder')}".toString(), named.find())
            long ends = Long.parseLong(named.group(1))
            assertTrue("${kind}: ends ${ends - now} s from now".toString(), ends >= (long) block[1] && ends <= (long) block[2])
            live.deleteDir()
        }
    }
}
