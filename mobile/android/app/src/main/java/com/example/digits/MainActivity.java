package com.example.digits;

import android.app.Activity;
import android.os.Bundle;
import android.widget.RadioButton;
import android.widget.RadioGroup;
import android.widget.TextView;
import com.example.digits.core.ArtifactSession;
import com.example.digits.core.ArtifactSpec;
import com.example.digits.core.Digits8x8;
import com.example.digits.core.GoldenCheck;
import com.example.digits.core.GoldenSet;
import com.example.digits.core.MobileRuntime;
import com.example.digits.core.Scores;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Draw a digit (or step through the golden inputs), run it in the runtime picked above, show the top
 * class, the probabilities and the latency. On start every artifact runs the golden inputs and the parity
 * verdict is shown. All model work happens on one background thread: the runtimes' models are not
 * thread-safe, and inference must not block the UI.
 */
public final class MainActivity extends Activity {
    private final ExecutorService worker = Executors.newSingleThreadExecutor();
    /** Touched only on the worker thread. */
    private final List<ArtifactSession> sessions = new ArrayList<>();
    /** Set once by the worker; read by both threads. */
    private volatile ModelAssets model;
    private volatile int selected;
    private float[] lastInput;
    private String lastCaption = "";
    private int goldenIndex;

    private RadioGroup runtimes;
    private GridView grid;
    private TextView result;
    private TextView parity;

    @Override
    protected void onCreate(Bundle savedInstanceState) {
        super.onCreate(savedInstanceState);
        setContentView(R.layout.activity_main);
        runtimes = findViewById(R.id.runtimes);
        grid = findViewById(R.id.grid);
        result = findViewById(R.id.result);
        parity = findViewById(R.id.parity);
        DrawView draw = findViewById(R.id.draw);

        draw.setListener((ink, width, height) -> {
            ModelAssets loaded = model;
            if (loaded != null && !Digits8x8.KIND.equals(loaded.metadata.preprocessingKind)) {
                result.setText("drawing needs preprocessing '" + Digits8x8.KIND + "', this model has '"
                        + loaded.metadata.preprocessingKind + "'; use the golden inputs");
                return;
            }
            classify(Digits8x8.centeredGrid(ink, width, height), "drawn: ");
        });
        findViewById(R.id.clear).setOnClickListener(v -> {
            draw.clear();
            grid.show(new float[Digits8x8.SIDE * Digits8x8.SIDE]);
            result.setText("");
        });
        findViewById(R.id.next_golden).setOnClickListener(v -> showNextGolden());
        runtimes.setOnCheckedChangeListener((group, id) -> {
            selected = id;
            if (lastInput != null) {
                classify(lastInput, lastCaption);
            }
        });
        worker.execute(this::loadAndCheck);
    }

    @Override
    protected void onDestroy() {
        worker.execute(() -> {
            for (ArtifactSession session : sessions) {
                session.close();
            }
        });
        worker.shutdown();
        super.onDestroy();
    }

    /** Worker thread: opens every mobile artifact and runs the golden check on each. */
    private void loadAndCheck() {
        ModelAssets loaded;
        try {
            loaded = ModelAssets.load(this);
        } catch (IOException e) {
            runOnUiThread(() -> parity.setText(R.string.no_assets));
            return;
        } catch (IllegalArgumentException e) {
            runOnUiThread(() -> parity.setText("metadata.json or golden.json is malformed: " + e.getMessage()));
            return;
        }
        model = loaded;
        StringBuilder report = new StringBuilder(String.format(Locale.ROOT, "Golden parity of %s, %d cases (%s build)\n",
                loaded.metadata.model, loaded.golden.cases.size(), Runtimes.FLAVOR));
        List<String> names = new ArrayList<>();
        List<Boolean> deprecated = new ArrayList<>();
        try {
            for (ArtifactSpec spec : loaded.mobileArtifacts()) {
                // One artifact that cannot load or run must not hide the others.
                try {
                    ArtifactSession session = loaded.open(spec);
                    sessions.add(session);
                    MobileRuntime runtime = MobileRuntime.forPath(spec.path);
                    names.add(runtime.label(spec));
                    deprecated.add(runtime.deprecated());
                    report.append(spec.key).append(": ").append(GoldenCheck.run(loaded.golden, session)).append('\n');
                    if (runtime.deprecated()) {
                        report.append("  DEPRECATED: ").append(runtime.deprecation).append('\n');
                    }
                } catch (Exception e) {
                    report.append(spec.key).append(": error: ").append(e).append('\n');
                }
            }
        } catch (IOException e) {
            report.append("cannot list the assets: ").append(e);
        }
        for (String line : loaded.notInThisBuild()) {
            report.append(line).append('\n');
        }
        runOnUiThread(() -> {
            for (int i = 0; i < names.size(); i++) {
                RadioButton button = new RadioButton(this);
                button.setId(i + 1); // ids must be positive; index = id - 1
                button.setText(names.get(i));
                if (deprecated.get(i)) {
                    button.setTextColor(0xFFB00020); // the deprecated runtime stands out; the reason is below
                }
                runtimes.addView(button);
            }
            if (!names.isEmpty()) {
                runtimes.check(1);
            }
            parity.setText(report.toString());
        });
    }

    /** Feeds the next golden case, so the app can be tried without drawing and compared with PyTorch. */
    private void showNextGolden() {
        ModelAssets loaded = model;
        if (loaded == null || loaded.golden.cases.isEmpty()) {
            return;
        }
        GoldenSet.Case c = loaded.golden.cases.get(goldenIndex++ % loaded.golden.cases.size());
        float[] expected = c.outputs.get(loaded.golden.outputs.get(0).name);
        String caption = String.format(Locale.ROOT, "golden %s, PyTorch says %s: ",
                c.name, loaded.metadata.label(Scores.argmax(expected, 0, expected.length)));
        classify(GoldenCheck.inputsOf(c, loaded.golden.inputs)[0], caption);
    }

    /** Runs the picked artifact on one input in PyTorch's layout (the app's models take one input). */
    private void classify(float[] input, String caption) {
        lastInput = input;
        lastCaption = caption;
        if (input.length == Digits8x8.SIDE * Digits8x8.SIDE) {
            grid.show(input);
        }
        int index = selected - 1;
        worker.execute(() -> {
            if (index < 0 || index >= sessions.size()) {
                return;
            }
            String text;
            try {
                long start = System.nanoTime();
                float[] logits = sessions.get(index).run(new float[][] {input})[0];
                double millis = (System.nanoTime() - start) / 1e6;
                text = caption + describe(Scores.softmax(logits), millis);
            } catch (Exception e) {
                text = caption + "error: " + e;
            }
            String shown = text;
            runOnUiThread(() -> result.setText(shown));
        });
    }

    private String describe(float[] probabilities, double millis) {
        ModelAssets loaded = model;
        int[] order = Scores.topK(probabilities, probabilities.length);
        StringBuilder text = new StringBuilder(String.format(Locale.ROOT, "%s  (%.1f%%)   %.2f ms\n",
                loaded.metadata.label(order[0]), 100 * probabilities[order[0]], millis));
        for (int i : order) {
            text.append(String.format(Locale.ROOT, "%3s %6.2f%%\n", loaded.metadata.label(i), 100 * probabilities[i]));
        }
        return text.toString();
    }
}
