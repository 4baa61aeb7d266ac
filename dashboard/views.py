from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def home(request):
    projects = request.user.projects.order_by("name")
    return render(request, "dashboard/home.html", {"projects": projects})
