package android.widget;
public class RadioButton extends TextView {
    public RadioButton(android.content.Context context) { super(context); }
}
