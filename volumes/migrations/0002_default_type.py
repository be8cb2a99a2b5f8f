from django.db import migrations


def add_default_type(apps, schema_editor):
    # Cinder's default type: what a volume gets when no type is named.
    VolumeType = apps.get_model("volumes", "VolumeType")
    VolumeType.objects.get_or_create(name="__DEFAULT__", defaults={"description": "Default Volume Type"})


class Migration(migrations.Migration):
    dependencies = [("volumes", "0001_initial")]
    operations = [migrations.RunPython(add_default_type, migrations.RunPython.noop)]
