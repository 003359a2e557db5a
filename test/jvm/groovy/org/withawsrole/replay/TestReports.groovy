package org.withawsrole.replay

/**
 * What the junit step reads from JUnit XML reports (<testsuite> or <testsuites>): counts per file.
 * As in Jenkins, failed or erroring tests make the build UNSTABLE, not FAILURE.
 */
class TestReports {
    static Map<String, Object> read(File file, String relativePath) {
        Node root
        try {
            root = new XmlParser(false, false).parse(file)
        } catch (Exception e) {
            throw new PipelineFailure("Failed to read test report file ${relativePath}: ${e.message}")
        }
        List<Node> suites = root.name() == 'testsuite' ? [root] : root.depthFirst().findAll { it instanceof Node && it.name() == 'testsuite' }
        int tests = 0, failures = 0, errors = 0, skipped = 0
        suites.each { Node suite ->
            List<Node> cases = suite.children().findAll { it instanceof Node && it.name() == 'testcase' }
            tests += cases.size()
            failures += cases.count { Node c -> c.children().any { it instanceof Node && it.name() == 'failure' } }
            errors += cases.count { Node c -> c.children().any { it instanceof Node && it.name() == 'error' } }
            skipped += cases.count { Node c -> c.children().any { it instanceof Node && it.name() == 'skipped' } }
        }
        return [file: relativePath, tests: tests, failures: failures, errors: errors, skipped: skipped]
    }
}
