package org.withawsrole

import org.junit.BeforeClass
import org.junit.Rule

/**
 * What every test against the world starts from: the world is up (test/world/up, its env
 * sourced), and `controller` holds this test's own controller settings (Vault's address, its
 * purposes file, ...), restored after the test.
 */
abstract class WorldTestBase {
    @Rule
    public ControllerSettings controller = new ControllerSettings()

    @BeforeClass
    static void requireWorld() {
        World.require()
    }
}
