package com.example.digits;

import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import androidx.test.ext.junit.runners.AndroidJUnit4;
import androidx.test.platform.app.InstrumentationRegistry;
import com.example.digits.core.ArtifactSession;
import com.example.digits.core.ArtifactSpec;
import com.example.digits.core.GoldenCheck;
import com.example.digits.core.MobileRuntime;
import com.example.digits.core.Parity;
import java.util.List;
import org.junit.Test;
import org.junit.runner.RunWith;

/**
 * The golden check on the device: every artifact in the app's assets that this build's runtimes run (the
 * .pte and .tflite files in the executorch flavor, the .ptl and .tflite files in the ptl flavor) must
 * reproduce PyTorch's golden outputs within golden.json's tolerance for its precision, in the real Android
 * runtimes.
 */
@RunWith(AndroidJUnit4.class)
public class GoldenParityTest {
    @Test
    public void everyMobileArtifactMatchesTheGoldenOutputs() throws Exception {
        ModelAssets model = ModelAssets.load(InstrumentationRegistry.getInstrumentation().getTargetContext());
        List<ArtifactSpec> artifacts = model.mobileArtifacts();
        assertFalse("no artifact for the " + Runtimes.FLAVOR + " build's runtimes in assets/model: run "
                + "`python -m converter android-assets DIR`", artifacts.isEmpty());
        // The executorch flavor must run the .pte, the ptl flavor the .ptl: neither may pass on LiteRT alone.
        boolean pytorchRuntimeRan = false;
        StringBuilder failures = new StringBuilder();
        for (ArtifactSpec spec : artifacts) {
            try (ArtifactSession session = model.open(spec)) {
                Parity.Result result = GoldenCheck.run(model.golden, session);
                pytorchRuntimeRan |= MobileRuntime.forPath(spec.path) != MobileRuntime.LITERT;
                // Logged for every artifact, so a passing run still shows its numbers in the test output.
                System.out.println("golden parity " + spec.key + ": " + result);
                if (!result.passed()) {
                    failures.append(spec.key).append(": ").append(result).append('\n');
                }
            }
        }
        assertTrue(failures.toString(), failures.length() == 0);
        assertTrue("no PyTorch runtime artifact (.pte or .ptl) for the " + Runtimes.FLAVOR + " build in the assets",
                pytorchRuntimeRan);
    }
}
