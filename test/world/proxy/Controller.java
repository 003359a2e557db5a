import java.util.HashMap;
import java.util.Map;

import org.jenkinsci.plugins.workflow.cps.CpsThread;
import org.withawsrole.bridge.AwsRoleBroker;

/**
 * One "controller": a JVM that loads the bridge jar (native library inside) and asks for
 * credentials as a build would. Args: name, then purpose=job:number pairs; each request runs as
 * that build (the replay runner's CpsThread stand-in, where the bridge reads it; the session
 * name is jenkins-<job>-<number>). Waits until the file
 * named by GO_FILE exists, so two JVMs ask at the same moment. Prints one line per request
 * (cache status and ARN, never a secret) and the broker's stats.
 */
public final class Controller {
    public static void main(String[] args) throws Exception {
        String name = args[0];
        String go = System.getenv("GO_FILE");
        AwsRoleBroker broker = AwsRoleBroker.shared();
        System.out.println(name + ": ready");
        while (go != null && !new java.io.File(go).exists()) {
            Thread.sleep(5);
        }
        for (int i = 1; i < args.length; i++) {
            String[] kv = args[i].split("=", 2);
            String[] build = kv[1].split(":", 2);
            Map<String, String> request = new HashMap<>();
            request.put("purpose", kv[0]);
            Map<String, String> c;
            try (CpsThread.ReplayScope scope = CpsThread.enterForReplay(build[0], Integer.parseInt(build[1]))) {
                c = broker.credentials(request);
            }
            // A short hash of the key id tells whether two JVMs got the same credentials.
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(c.get("access_key_id").getBytes("UTF-8"));
            String key = String.format("%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
            System.out.println(name + ": " + kv[0] + " " + kv[1] + " cache=" + c.get("cache") + " key#" + key + " arn=" + c.get("arn"));
        }
        System.out.println(name + ": stats " + broker.stats());
    }
}
