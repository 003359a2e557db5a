import java.util.HashMap;
import java.util.Map;

import org.withawsrole.bridge.AwsRoleBroker;

/**
 * One "controller": a JVM that loads the bridge jar (native library inside) and asks for
 * credentials as a build would. Args: name, then purpose=session pairs. Waits until the file
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
            Map<String, String> request = new HashMap<>();
            request.put("purpose", kv[0]);
            request.put("session_name", kv[1]);
            Map<String, String> c = broker.credentials(request);
            // A short hash of the key id tells whether two JVMs got the same credentials.
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(c.get("access_key_id").getBytes("UTF-8"));
            String key = String.format("%02x%02x%02x%02x", d[0], d[1], d[2], d[3]);
            System.out.println(name + ": " + kv[0] + " " + kv[1] + " cache=" + c.get("cache") + " key#" + key + " arn=" + c.get("arn"));
        }
        System.out.println(name + ": stats " + broker.stats());
    }
}
