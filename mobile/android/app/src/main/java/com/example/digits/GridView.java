package com.example.digits;

import android.content.Context;
import android.graphics.Canvas;
import android.graphics.Color;
import android.graphics.Paint;
import android.util.AttributeSet;
import android.view.View;
import com.example.digits.core.Digits8x8;

/** Shows the 8x8 model input as grey cells, so the user sees what the model sees. */
public final class GridView extends View {
    private final Paint paint = new Paint();
    private float[] grid = new float[Digits8x8.SIDE * Digits8x8.SIDE];

    public GridView(Context context, AttributeSet attrs) {
        super(context, attrs);
    }

    void show(float[] grid) {
        this.grid = grid.clone();
        invalidate();
    }

    @Override
    protected void onDraw(Canvas canvas) {
        float cw = getWidth() / (float) Digits8x8.SIDE;
        float ch = getHeight() / (float) Digits8x8.SIDE;
        for (int row = 0; row < Digits8x8.SIDE; row++) {
            for (int col = 0; col < Digits8x8.SIDE; col++) {
                int level = Math.round(255 * (1 - Math.max(0f, Math.min(1f, grid[row * Digits8x8.SIDE + col]))));
                paint.setColor(Color.rgb(level, level, level));
                canvas.drawRect(col * cw, row * ch, (col + 1) * cw, (row + 1) * ch, paint);
            }
        }
    }
}
